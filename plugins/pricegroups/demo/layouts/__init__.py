"""The three site layouts. Each module renders one chain's pages and names its URL paths."""

from __future__ import annotations

from types import ModuleType

from pricegroups.demo.layouts import grid, jsonld, table

LAYOUT_MODULES: dict[str, ModuleType] = {"grid": grid, "table": table, "jsonld": jsonld}
