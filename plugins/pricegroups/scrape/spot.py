"""Spot checks: read the first catalogue page(s) of members that are not scraped this run.

A member moves to another pricing zone silently; a full verification finds it
only when its turn comes (days). One page a day of every member costs a small
share of a full scrape and shows a move at once: `grouping.spotcheck` compares
the page with what is served and sends a member that disagrees to a full
scrape in the same run. The page's items are kept in `spot_check_items` (no
observed price is dropped), but not served: one page is not a verification.

No snapshots: a retried scrape task reads the page again, which costs a page.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg
import requests

from pricegroups.errors import PricegroupsError
from pricegroups.scrape.context import ConnectionLookup
from pricegroups.scrape.walk import read_catalogue
from pricegroups.scrape.fetch import LiveFetcher
from pricegroups.scrape.service import catalogue_url, describe_failure, load_chain
from pricegroups.settings import Settings

log = logging.getLogger(__name__)


def spot_check_stores(
    conn: psycopg.Connection,
    run_id: str,
    logical_date: datetime,
    chain_code: str,
    store_ids: list[int],
    settings: Settings,
    session: requests.Session | None = None,
    connection_lookup: ConnectionLookup | None = None,
) -> dict[str, Any]:
    """Read `settings.spot_check_pages` page(s) of each store and record them; commits per store.

    A failure is recorded with the store and skipped: a spot check is a probe,
    and the store's next verification scrapes it in full anyway.
    """
    counts = {"spot_checked": 0, "spot_failed": 0, "spot_pages": 0, "spot_items": 0}
    if not store_ids or settings.spot_check_pages < 1:
        return counts
    chain = load_chain(conn, chain_code).on(logical_date)
    stores = conn.execute(
        "SELECT store_id, code FROM stores WHERE chain_id = %s AND store_id = ANY(%s) AND active ORDER BY store_id",
        (chain.chain_id, list(store_ids)),
    ).fetchall()
    conn.commit()
    max_pages = min(chain.profile.max_pages, settings.max_pages_per_store)
    live = LiveFetcher(chain.base_url, chain.polite(settings), session)
    chain_requests = chain.request_context(connection_lookup)
    try:
        for store_id, code in stores:
            items, pages, error = [], 0, None
            try:
                catalogue = read_catalogue(live, catalogue_url(chain, code, None), chain.profile, max_pages,
                                           stop_after=settings.spot_check_pages,
                                           headers=chain_requests.headers(code))
                items, pages = catalogue.items, catalogue.pages
            except PricegroupsError as exc:
                error = describe_failure(exc)
                log.warning("%s %s: spot check failed: %s", chain_code, code, error)
            _record(conn, run_id, store_id, chain.chain_id, logical_date, pages, items, error)
            counts["spot_checked" if error is None else "spot_failed"] += 1
            counts["spot_pages"] += pages
            counts["spot_items"] += len(items)
    finally:
        if session is None:
            live.close()
    return counts


def _record(
    conn: psycopg.Connection, run_id: str, store_id: int, chain_id: int, checked_at: datetime,
    pages: int, items: list, error: str | None,
) -> None:
    """Replace the store's spot check of this run (a retry records over the earlier attempt)."""
    with conn.transaction():
        conn.execute("DELETE FROM spot_checks WHERE run_id = %s AND store_id = %s", (run_id, store_id))
        conn.execute(
            """INSERT INTO spot_checks (run_id, store_id, chain_id, checked_at, pages, items, error)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (run_id, store_id, chain_id, checked_at, pages, len(items), error),
        )
        if items:
            with conn.cursor().copy(
                "COPY spot_check_items (run_id, store_id, sku, price, was_price, on_special) FROM STDIN"
            ) as copy:
                for item in items:
                    copy.write_row((run_id, store_id, item.sku, item.price, item.was_price, item.on_special))
