"""Python hooks for chains whose site a declarative profile cannot describe.

A profile names a hook module ("hook": "pricegroups.scrape.hooks.NAME"); the
module defines one or both of:

- `extract_items(root, url, profile) -> iterable of dict`: replaces the item
  XPaths; each dict maps item field names to raw values, which then go
  through the profile's field parsers and validation like any other item.
- `fix_item(raw: dict, url) -> dict | None`: adjusts one item's raw values
  before parsing; None skips a node that is not a product.

Hooks are project code (only modules under `pricegroups.` are accepted), so
a site profile stored in the database can never name arbitrary code.
"""
