"""The demo site's chains as the pipeline registers them: code, name and the shipped profile of each layout.

See docs/demo-site.md. The site itself (server.py) needs none of this; it is
what `demo-chains`, `scrape --demo-base-url`, the demo, the benchmarks and
the tests use to point pricegroups at a running demo site.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg

from pricegroups.scrape.profile import load_profile_file
from pricegroups.scrape.service import DATE_FIELD, register_chain

# (code, name, layout): the layout the demo scrapes each chain by, and the shipped site profile of that name.
# ValueWay and Greengrocer are scraped through their apps (a JSON API; app state embedded in pages); their
# HTML sites (table, jsonld) are still served, for the HTML examples (docs/site-profiles.md).
DEMO_CHAINS = (
    ("freshmart", "FreshMart", "grid"),
    ("valueway", "ValueWay", "api"),
    ("greengrocer", "Greengrocer", "nextdata"),
)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo_profiles(base_url: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(code, name, base_url, profile) for each demo chain, ready for register_chain."""
    base = base_url.rstrip("/")
    return [(code, name, base, load_profile_file(layout)) for code, name, layout in DEMO_CHAINS]


def register_demo_chains(conn: psycopg.Connection, base_url: str, dated: bool = False) -> dict[str, int]:
    """Register the demo site's chains with their shipped profiles; chain_id by code.

    `dated`: the site's day follows each run's logical date (its `/on/YYYY-MM-DD/` paths),
    as under a scheduler; otherwise the site's settable day is served. On loopback the
    demo chains have no politeness limit (the site is ours); elsewhere the default applies.
    """
    rate = 0.0 if urlsplit(base_url).hostname in LOOPBACK_HOSTS else None
    if dated:
        base_url = base_url.rstrip("/") + "/on/" + DATE_FIELD
    return {code: register_chain(conn, code, name, base, profile, rate)
            for code, name, base, profile in demo_profiles(base_url)}
