"""The scrape step as the DAG (and the CLI) call it: plain data in, counts out.

For one chain and a list of stores: read the store locator, then each store's
catalogue (from its snapshot for this logical date when one is complete,
else live), decide ok / failed / suspect, and record the outcome in its own
transaction. A store's failure never stops the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote, urljoin

import psycopg
import requests

from pricegroups.errors import ConfigError, HttpStatusError, PricegroupsError, StoreClosed
from pricegroups.scrape.context import ChainRequests, ConnectionLookup
from pricegroups.scrape.walk import read_catalogue, read_locator
from pricegroups.scrape.fetch import Fetcher, FetchStats, LiveFetcher, same_host
from pricegroups.scrape.jsonlayout import first_url
from pricegroups.scrape.parse import LocatedStore, first_page_url
from pricegroups.scrape.profile import SiteProfile, compile_profile
from pricegroups.scrape.record import FAILED, OK, SUSPECT, StoreOutcome, last_ok_item_counts, record_outcome
from pricegroups.scrape.snapshots import LOCATOR_KEY, RecordingFetcher, SnapshotKey, SnapshotStore, snapshot_store
from pricegroups.settings import Settings
from pricegroups.stores import StoreInfo, ensure_chain, ensure_stores

log = logging.getLogger(__name__)


DATE_FIELD = "{ds}"  # in a base URL: the run's logical date, YYYY-MM-DD (sites serving dated price lists)


@dataclass(frozen=True)
class ChainConfig:
    chain_id: int
    code: str
    base_url: str
    profile: SiteProfile
    requests_per_second: float | None = None  # None: the settings' default

    def on(self, logical_date: datetime) -> "ChainConfig":
        """This chain as a run of `logical_date` sees it: `{ds}` in the base URL filled in."""
        day = logical_date.astimezone(timezone.utc).date().isoformat()
        return replace(self, base_url=self.base_url.replace(DATE_FIELD, day))

    def polite(self, settings: Settings) -> Settings:
        """The settings with the chain's own rate limit, when it has one."""
        if self.requests_per_second is None:
            return settings
        return replace(settings, requests_per_second=self.requests_per_second)

    def request_context(self, connection_lookup: ConnectionLookup | None = None) -> ChainRequests:
        """The headers and cookies of this chain's requests (its secret read through `connection_lookup`)."""
        return ChainRequests(self.profile.request, connection_lookup)


@dataclass
class ScrapeReport:
    """Every store outcome of one chain's scrape; `counts()` is what goes to XCom."""

    chain: str
    run_id: str
    outcomes: list[StoreOutcome] = field(default_factory=list)
    locator_error: str | None = None
    locator_requests: int = 0

    def counts(self) -> dict[str, Any]:
        by_status = {s: [o for o in self.outcomes if o.status == s] for s in (OK, FAILED, SUSPECT)}
        return {
            "chain": self.chain,
            "stores": len(self.outcomes),
            "ok": len(by_status[OK]),
            "failed": len(by_status[FAILED]),
            "suspect": len(by_status[SUSPECT]),
            "items": sum(len(o.items) for o in by_status[OK]),
            "pages": sum(o.pages for o in self.outcomes),
            "dropped": sum(o.dropped_items for o in by_status[OK]),
            "http_requests": self.locator_requests + sum(o.http_requests for o in self.outcomes),
            "from_snapshot": sum(1 for o in self.outcomes if o.from_snapshot),
            "failed_store_ids": [o.store_id for o in by_status[FAILED]],
            "suspect_store_ids": [o.store_id for o in by_status[SUSPECT]],
            # failed as if the store were gone (unlisted, 404, "closed" page): group maintenance judges
            "gone_store_ids": [o.store_id for o in self.outcomes if o.gone],
            "locator_error": self.locator_error,
        }


def load_chain(conn: psycopg.Connection, chain_code: str) -> ChainConfig:
    row = conn.execute(
        "SELECT chain_id, base_url, site_profile, requests_per_second FROM chains WHERE code = %s", (chain_code,)
    ).fetchone()
    if row is None:
        raise ConfigError(f"unknown chain {chain_code!r}")
    chain_id, base_url, profile, rps = row
    if not base_url:
        raise ConfigError(f"chain {chain_code!r} has no base_url")
    if not profile:
        raise ConfigError(f"chain {chain_code!r} has no site profile")
    return ChainConfig(chain_id, chain_code, base_url, compile_profile(profile), rps)


def register_chain(
    conn: psycopg.Connection, code: str, name: str, base_url: str, profile: Mapping[str, Any],
    requests_per_second: float | None = None,
) -> int:
    """Validate a site profile and store the chain with it (insert or update); returns chain_id."""
    compile_profile(profile)
    check_base_url(base_url)
    check_requests_per_second(requests_per_second)
    return ensure_chain(conn, code, name, base_url.rstrip("/"), profile, requests_per_second)


def check_base_url(base_url: str) -> str:
    """Refuse a base URL the scraper could not use (checked before anything is stored or fetched)."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}")
    if "{" in base_url.replace(DATE_FIELD, "") or "}" in base_url.replace(DATE_FIELD, ""):
        raise ConfigError(f"base_url may hold only the field {DATE_FIELD} (the logical date), got {base_url!r}")
    return base_url


def check_requests_per_second(value: float | None) -> float | None:
    """A chain's own rate limit: None (the settings' default), 0 (none: loopback only) up to 1000."""
    if value is not None and not 0 <= value < 1_000:
        raise ConfigError(f"requests_per_second must be from 0 (no limit) to 1000, got {value!r}")
    return value


def locator_url(chain: ChainConfig) -> str:
    """The absolute URL of the chain's store locator page."""
    rule = chain.profile.locator
    if rule is None:
        raise ConfigError(f"chain {chain.code!r}: the site profile has no store locator")
    url = urljoin(chain.base_url + "/", rule.path.lstrip("/"))
    pagination = getattr(rule, "pagination", None)  # a json locator paginates
    return url if pagination is None else first_url(url, pagination)


def _read_locator(
    chain: ChainConfig, logical_date: datetime, live: Fetcher, snapshots: SnapshotStore, force: bool,
    chain_requests: ChainRequests,
) -> dict[str, LocatedStore]:
    """The stores the chain's locator lists, closed ones too (its pages are snapshotted like a store's)."""
    url = locator_url(chain)
    key = SnapshotKey(chain.code, LOCATOR_KEY, logical_date)
    if not force and snapshots.is_complete(key):
        return {s.code: s for s in read_locator(snapshots.replay(key), url, chain.profile)}
    writer = snapshots.writer(key)
    stores = read_locator(RecordingFetcher(live, writer), url, chain.profile, chain_requests.headers(None))
    writer.complete()  # only a locator that parsed is worth replaying
    return {s.code: s for s in stores}


def sync_stores(
    conn: psycopg.Connection,
    chain_code: str,
    settings: Settings,
    at: datetime,
    run_id: str | None = None,
    session: requests.Session | None = None,
    force: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    connection_lookup: ConnectionLookup | None = None,
) -> dict[str, Any]:
    """Read the chain's store locator and add the (open) stores the database does not know yet.

    Stores the locator no longer lists, or lists as closed, are reported
    (`unlisted`, `closed`), not deactivated: closing a store is a decision for
    group maintenance.
    """
    chain = load_chain(conn, chain_code).on(at)
    live = LiveFetcher(chain.base_url, chain.polite(settings), session)
    try:
        listed = _read_locator(chain, at, live, snapshot_store(settings, storage_options), force,
                               chain.request_context(connection_lookup))
    finally:
        if session is None:
            live.close()
    known = dict(conn.execute(
        "SELECT code, store_id FROM stores WHERE chain_id = %s AND active", (chain.chain_id,)
    ).fetchall())
    open_stores = {code: s for code, s in listed.items() if not s.closed}
    infos = [StoreInfo(s.code, s.name, s.address) for s in open_stores.values()]
    ids = ensure_stores(conn, chain.chain_id, infos, at=at, run_id=run_id)
    conn.commit()
    return {
        "chain": chain_code,
        "listed": len(open_stores),
        "new": sorted(code for code in ids if code not in known),
        "unlisted": sorted(code for code in known if code not in open_stores),
        "closed": sorted(code for code, s in listed.items() if s.closed),
        "http_requests": live.stats.requests,
    }


def _stores_to_scrape(
    conn: psycopg.Connection, chain: ChainConfig, store_ids: list[int] | None
) -> list[tuple[int, str]]:
    if store_ids is None:
        rows = conn.execute(
            "SELECT store_id, code FROM stores WHERE chain_id = %s AND active ORDER BY store_id",
            (chain.chain_id,),
        ).fetchall()
        return [tuple(r) for r in rows]
    rows = conn.execute(
        "SELECT store_id, code FROM stores WHERE chain_id = %s AND store_id = ANY(%s) ORDER BY store_id",
        (chain.chain_id, list(store_ids)),
    ).fetchall()
    unknown = set(store_ids) - {r[0] for r in rows}
    if unknown:
        raise ConfigError(f"stores {sorted(unknown)} are not stores of chain {chain.code!r}")
    return [tuple(r) for r in rows]


def catalogue_url(chain: ChainConfig, code: str, listed: LocatedStore | None) -> str:
    """A store's first catalogue page: the locator's link when it stays on the chain's host, else the template.

    With the page size the profile asks for, when it sets one (json layout).
    """
    if listed is not None and listed.catalogue_url and same_host(listed.catalogue_url, chain.base_url):
        return first_page_url(listed.catalogue_url, chain.profile)
    path = chain.profile.url_template.format(store_code=quote(code, safe=""))
    return first_page_url(urljoin(chain.base_url + "/", path.lstrip("/")), chain.profile)


def describe_failure(exc: PricegroupsError) -> str:
    """A store's failure as the scrape log says it (a 404/410 reads as a store not found)."""
    if isinstance(exc, HttpStatusError) and exc.status in (404, 410):
        return f"store not found (HTTP {exc.status}): {exc.url}"
    return str(exc)


def scrape_one_store(
    chain: ChainConfig,
    store_id: int,
    code: str,
    logical_date: datetime,
    settings: Settings,
    live: LiveFetcher,
    snapshots: SnapshotStore,
    start_url: str,
    force: bool = False,
    chain_requests: ChainRequests | None = None,
) -> StoreOutcome:
    """Fetch (or replay) and parse one store's catalogue; never raises an expected failure.

    `chain_requests` gives the store's headers and cookies (a missing secret fails the store, saying so).
    """
    started = time.perf_counter()
    key = SnapshotKey(chain.code, code, logical_date)
    from_snapshot = not force and snapshots.is_complete(key)
    before = live.stats.snapshot()
    outcome = StoreOutcome(store_id, code, FAILED, from_snapshot=from_snapshot)
    max_pages = min(chain.profile.max_pages, settings.max_pages_per_store)
    try:
        if from_snapshot:
            catalogue = read_catalogue(snapshots.replay(key), start_url, chain.profile, max_pages)
        else:
            headers = (chain_requests or chain.request_context()).headers(code)
            writer = snapshots.writer(key)
            catalogue = read_catalogue(RecordingFetcher(live, writer), start_url, chain.profile, max_pages,
                                       headers=headers)
            writer.complete()
    except PricegroupsError as exc:
        outcome.error = describe_failure(exc)
        outcome.gone = isinstance(exc, StoreClosed) or (
            isinstance(exc, HttpStatusError) and exc.status in (404, 410)
        )
    else:
        outcome.status = OK
        outcome.pages = catalogue.pages
        outcome.items = catalogue.items
        outcome.dropped = catalogue.dropped
    used: FetchStats = live.stats.since(before)
    outcome.http_requests, outcome.http_errors = used.requests, used.http_errors
    outcome.retries = used.retries
    outcome.duration_s = time.perf_counter() - started
    return outcome


def _judge(outcome: StoreOutcome, baseline: int | None, share: float) -> None:
    """An ok catalogue much smaller than the store's last good one is suspect (truncated?)."""
    outcome.baseline_items = baseline
    if outcome.status != OK:
        return
    if not outcome.items:
        outcome.status, outcome.error = SUSPECT, "empty catalogue"
    elif baseline and len(outcome.items) < share * baseline:
        outcome.status = SUSPECT
        outcome.error = f"{len(outcome.items)} items, below {share:.0%} of the last ok scrape ({baseline})"


def scrape_chain(
    conn: psycopg.Connection,
    run_id: str,
    logical_date: datetime,
    chain_code: str,
    store_ids: list[int] | None,
    settings: Settings,
    force: bool = False,
    session: requests.Session | None = None,
    storage_options: Mapping[str, Any] | None = None,
    connection_lookup: ConnectionLookup | None = None,
) -> ScrapeReport:
    """Scrape some (None: all active) stores of one chain; commits once per store.

    `connection_lookup` reads the secret of a profile that names a connection
    (the DAG gives Airflow's; the library imports nothing from Airflow).
    """
    if logical_date.tzinfo is None:
        raise ConfigError("logical_date must be timezone-aware")
    if not conn.autocommit and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ConfigError("scrape_chain commits per store: call it with no transaction open")
    try:
        chain = load_chain(conn, chain_code).on(logical_date)
    except ConfigError as exc:  # a profile stored unchecked: each store fails with the reason, nothing else
        return _unscrapable(conn, run_id, logical_date, chain_code, store_ids, exc)
    stores = _stores_to_scrape(conn, chain, store_ids)
    baselines = last_ok_item_counts(conn, [s for s, _ in stores], logical_date, run_id)
    conn.commit()
    report = ScrapeReport(chain_code, run_id)
    snapshots = snapshot_store(settings, storage_options)  # credentials come from the caller, never XCom
    live = LiveFetcher(chain.base_url, chain.polite(settings), session)  # one Session per chain per run
    chain_requests = chain.request_context(connection_lookup)
    try:
        try:
            listed = _read_locator(chain, logical_date, live, snapshots, force, chain_requests)
        except PricegroupsError as exc:
            listed = None
            report.locator_error = str(exc)
            log.warning("%s: store locator unavailable, using the URL template: %s", chain_code, exc)
        report.locator_requests = live.stats.requests
        for store_id, code in stores:
            if listed is not None and code not in listed:
                outcome = StoreOutcome(
                    store_id, code, FAILED, error="store not listed by the store locator", gone=True
                )
            elif listed is not None and listed[code].closed:
                outcome = StoreOutcome(
                    store_id, code, FAILED, error="store closed (the store locator lists it as closed)", gone=True
                )
            else:
                start_url = catalogue_url(chain, code, listed.get(code) if listed else None)
                outcome = scrape_one_store(
                    chain, store_id, code, logical_date, settings, live, snapshots, start_url, force,
                    chain_requests,
                )
            _judge(outcome, baselines.get(store_id), settings.suspect_share)
            record_outcome(conn, run_id, logical_date, chain.chain_id, outcome)
            log.info(
                "%s %s: %s, %d pages, %d items, %d dropped%s%s", chain_code, code, outcome.status,
                outcome.pages, len(outcome.items), outcome.dropped_items,
                " (snapshot)" if outcome.from_snapshot else "", f": {outcome.error}" if outcome.error else "",
            )
            report.outcomes.append(outcome)
    finally:
        if session is None:
            live.close()
    return report


def _unscrapable(
    conn: psycopg.Connection, run_id: str, logical_date: datetime, chain_code: str,
    store_ids: list[int] | None, error: ConfigError,
) -> ScrapeReport:
    """A known chain whose stored profile (or base URL) is unusable: every store's scrape fails, saying why."""
    row = conn.execute("SELECT chain_id FROM chains WHERE code = %s", (chain_code,)).fetchone()
    if row is None:
        raise error  # no such chain: the caller's mistake, not a store's failure
    chain_id = row[0]
    stores = conn.execute(
        """SELECT store_id, code FROM stores WHERE chain_id = %s AND (%s::bigint[] IS NULL OR store_id = ANY(%s))
                  AND (active OR %s::bigint[] IS NOT NULL) ORDER BY store_id""",
        (chain_id, store_ids, store_ids, store_ids),
    ).fetchall()
    conn.commit()
    report = ScrapeReport(chain_code, run_id, locator_error=str(error))
    for store_id, code in stores:
        outcome = StoreOutcome(store_id, code, FAILED, error=f"chain {chain_code}: {error}")
        record_outcome(conn, run_id, logical_date, chain_id, outcome)
        report.outcomes.append(outcome)
    log.error("%s: not scraped: %s", chain_code, error)
    return report


def scrape_stores(
    conn: psycopg.Connection,
    run_id: str,
    logical_date: datetime,
    chain_code: str,
    store_ids: list[int] | None,
    settings: Settings,
    force: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    connection_lookup: ConnectionLookup | None = None,
) -> dict[str, Any]:
    """The DAG's scrape task for one chain: counts only (items stay in scraped_items)."""
    return scrape_chain(conn, run_id, logical_date, chain_code, store_ids, settings, force,
                        storage_options=storage_options, connection_lookup=connection_lookup).counts()
