"""Chains as a user manages them: add, change, list and inspect, with commands rather than Python.

Registration itself (profile validation, the upsert) is `scrape.service.register_chain`;
this module adds what a user needs around it: refusing to add a chain twice or to
update one that does not exist, an error that says what a chain code may be
(`stores.CHAIN_CODE_PATTERN`), and the read-only views behind `chains list` and
`chains show`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import psycopg

from pricegroups.errors import ConfigError
from pricegroups.grouping.admin import GroupView, show_groups
from pricegroups.scrape.service import register_chain
from pricegroups.stores import check_chain_code

@dataclass(frozen=True)
class ChainSummary:
    """One line of `chains list`."""

    code: str
    name: str
    base_url: str | None
    requests_per_second: float | None  # None: the settings' default
    stores: int  # active stores
    groups: int
    last_scraped_at: datetime | None  # newest logical date any store of the chain was scraped ok


@dataclass(frozen=True)
class StoreLine:
    code: str
    name: str | None
    address: str | None
    active: bool
    last_scraped_at: datetime | None


@dataclass(frozen=True)
class LastScrape:
    """The chain's newest scrape run, from the scrape log (a run of the DAG or of `scrape`)."""

    run_id: str
    logical_date: datetime | None
    started_at: datetime
    ok: int
    failed: int
    suspect: int
    items: int


@dataclass(frozen=True)
class ChainDetails:
    """What `chains show` prints."""

    summary: ChainSummary
    profile: Mapping[str, Any]
    stores: list[StoreLine]  # the first few, by code
    inactive_stores: int
    groups: list[GroupView] = field(default_factory=list)
    last_scrape: LastScrape | None = None


def add_chain(
    conn: psycopg.Connection, code: str, name: str, base_url: str, profile: Mapping[str, Any],
    requests_per_second: float | None = None,
) -> int:
    """Register a new chain; a chain code already in use is refused (change it with update_chain)."""
    check_chain_code(code)
    if _stored(conn, code) is not None:
        raise ConfigError(f"chain {code!r} exists already; change it with `chains update {code}`")
    return register_chain(conn, code, name, base_url, profile, requests_per_second)


def update_chain(
    conn: psycopg.Connection, code: str, *, name: str | None = None, base_url: str | None = None,
    profile: Mapping[str, Any] | None = None, requests_per_second: float | None = None,
) -> list[str]:
    """Change what is given of an existing chain (validated as on registration); the names of what changed."""
    stored = _stored(conn, code)
    if stored is None:
        raise ConfigError(f"unknown chain {code!r}; add it with `chains add --code {code} ...`")
    new = {
        "name": stored["name"] if name is None else name,
        "base_url": stored["base_url"] if base_url is None else base_url,
        "site_profile": stored["site_profile"] if profile is None else dict(profile),
        "requests_per_second": stored["requests_per_second"] if requests_per_second is None
        else requests_per_second,
    }
    if not new["base_url"]:
        raise ConfigError(f"chain {code!r} has no base URL yet: give --base-url")
    if not new["site_profile"]:
        raise ConfigError(f"chain {code!r} has no site profile yet: give --profile FILE.json")
    register_chain(conn, code, new["name"], new["base_url"], new["site_profile"], new["requests_per_second"])
    after = _stored(conn, code)
    return [key for key in new if after[key] != stored[key]]


def list_chains(conn: psycopg.Connection) -> list[ChainSummary]:
    """Every chain with its store and group counts and its newest scrape, by code."""
    rows = conn.execute(_SUMMARY + " ORDER BY c.code").fetchall()
    return [ChainSummary(*row) for row in rows]


def chain_details(conn: psycopg.Connection, code: str, store_sample: int = 5) -> ChainDetails:
    """One chain as `chains show` prints it: profile, a few stores, its groups and its last scrape."""
    row = conn.execute(_SUMMARY + " WHERE c.code = %s", (code,)).fetchone()
    if row is None:
        raise ConfigError(f"unknown chain {code!r}")
    summary = ChainSummary(*row)
    profile = conn.execute("SELECT site_profile FROM chains WHERE code = %s", (code,)).fetchone()[0]
    stores = [StoreLine(*r) for r in conn.execute(
        """SELECT s.code, s.name, s.address, s.active, s.last_scraped_at
           FROM stores s JOIN chains c USING (chain_id)
           WHERE c.code = %s ORDER BY NOT s.active, s.code LIMIT %s""",
        (code, store_sample),
    ).fetchall()]
    inactive = conn.execute(
        "SELECT count(*) FROM stores s JOIN chains c USING (chain_id) WHERE c.code = %s AND NOT s.active", (code,)
    ).fetchone()[0]
    last = conn.execute(
        """SELECT l.run_id, max(l.logical_date), max(l.started_at),
                  count(*) FILTER (WHERE l.status = 'ok'), count(*) FILTER (WHERE l.status = 'failed'),
                  count(*) FILTER (WHERE l.status = 'suspect'),
                  coalesce(sum(l.items) FILTER (WHERE l.status = 'ok'), 0)
           FROM scrape_log l JOIN stores s USING (store_id) JOIN chains c USING (chain_id)
           WHERE c.code = %s
           GROUP BY l.run_id
           ORDER BY max(l.started_at) DESC, max(l.scrape_id) DESC
           LIMIT 1""",
        (code,),
    ).fetchone()
    return ChainDetails(
        summary=summary, profile=profile, stores=stores, inactive_stores=inactive,
        groups=show_groups(conn, code), last_scrape=LastScrape(*last) if last else None,
    )


_SUMMARY = """
    SELECT c.code, c.name, c.base_url, c.requests_per_second,
           (SELECT count(*) FROM stores s WHERE s.chain_id = c.chain_id AND s.active),
           (SELECT count(*) FROM store_groups g WHERE g.chain_id = c.chain_id),
           (SELECT max(s.last_scraped_at) FROM stores s WHERE s.chain_id = c.chain_id)
    FROM chains c"""


def _stored(conn: psycopg.Connection, code: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT name, base_url, site_profile, requests_per_second FROM chains WHERE code = %s", (code,)
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("name", "base_url", "site_profile", "requests_per_second"), row))
