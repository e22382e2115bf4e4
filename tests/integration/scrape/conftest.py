"""The demo site's chains registered in a fresh database, and settings for loopback scraping."""

from __future__ import annotations

from datetime import datetime, time, timezone
from pathlib import Path

import psycopg
import pytest

from pricegroups.demo.chains import demo_profiles
from pricegroups.demo.server import DemoSite
from pricegroups.scrape.service import register_chain, sync_stores
from pricegroups.settings import Settings


@pytest.fixture
def scrape_settings(tmp_path: Path) -> Settings:
    """No rate limit (loopback), short backoffs, snapshots in the test's own directory."""
    return Settings().with_overrides({
        "snapshot_root": str(tmp_path / "snapshots"),
        "requests_per_second": 0,
        "retry_backoff_s": 0.05,
        "http_timeout_s": 5,
        "http_retries": 3,
    })


def day_date(site: DemoSite, day: int) -> datetime:
    """The logical date of a simulated day (midnight UTC), as the demo runner passes it."""
    return datetime.combine(site.scenario.date_of(day), time(0), tzinfo=timezone.utc)


@pytest.fixture
def demo_chains(conn: psycopg.Connection, demo_site: DemoSite, scrape_settings: Settings) -> dict[str, int]:
    """The three demo chains registered with their shipped profiles and their stores synced (day 0)."""
    ids = {}
    for code, name, base_url, profile in demo_profiles(demo_site.base_url):
        ids[code] = register_chain(conn, code, name, base_url, profile)
    conn.commit()
    for code in ids:
        sync_stores(conn, code, scrape_settings, day_date(demo_site, 0), run_id="setup")
    demo_site.reset()
    return ids


def store_id(conn: psycopg.Connection, chain: str, code: str) -> int:
    row = conn.execute(
        "SELECT store_id FROM stores JOIN chains USING (chain_id) WHERE chains.code = %s AND stores.code = %s",
        (chain, code),
    ).fetchone()
    conn.commit()
    return row[0]
