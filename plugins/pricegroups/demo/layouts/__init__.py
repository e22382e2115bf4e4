"""The site layouts. Each module renders one chain's pages and names its URL paths.

`grid`, `table` and `jsonld` are a chain's HTML site; `api` and `nextdata` are
the app a chain may serve beside it (model.APP_LAYOUTS), the store chosen by a
header or a cookie instead of the path.
"""

from __future__ import annotations

from types import ModuleType

from pricegroups.demo.layouts import api, grid, jsonld, nextdata, table

LAYOUT_MODULES: dict[str, ModuleType] = {"grid": grid, "table": table, "jsonld": jsonld}
APP_MODULES: dict[str, ModuleType] = {"api": api, "nextdata": nextdata}
