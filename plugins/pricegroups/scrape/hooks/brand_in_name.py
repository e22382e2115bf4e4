"""Example hook: a site that writes "BRAND - Product name" in one field and shows sponsored tiles.

Splits the brand off the name when the profile extracts no brand of its own,
and skips tiles whose SKU starts with "AD-" (advertising, not products).
"""

from __future__ import annotations

from typing import Any


def fix_item(raw: dict[str, Any], url: str) -> dict[str, Any] | None:
    sku = (raw.get("sku") or "").strip()
    if sku.upper().startswith("AD-"):
        return None
    name = raw.get("name") or ""
    if not raw.get("brand") and " - " in name:
        brand, _, rest = name.partition(" - ")
        raw = {**raw, "brand": brand.strip(), "name": rest.strip()}
    return raw
