"""Try a site profile on the live site before it is registered: `chains try`.

A new chain's profile is written against pages the author has only looked
at; this reads the real store locator and the first catalogue page(s) with
the same polite fetcher, locator parser and catalogue walker a run uses, and
returns everything the profile made of them, every dropped item with its
reason included. It writes nothing: no database, no snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import requests

from pricegroups.errors import ConfigError, PricegroupsError, TooManyDropped
from pricegroups.scrape.context import ChainRequests, ConnectionLookup
from pricegroups.scrape.walk import Catalogue, read_catalogue, read_locator
from pricegroups.scrape.fetch import FetchStats, LiveFetcher, SentRequest
from pricegroups.scrape.parse import LocatedStore
from pricegroups.scrape.profile import compile_profile
from pricegroups.scrape.service import (
    ChainConfig, catalogue_url, check_base_url, check_requests_per_second, describe_failure, locator_url,
)
from pricegroups.settings import Settings

TRIAL_CHAIN_ID = 0  # the chain is not in the database (and never will be by a trial)


@dataclass
class Trial:
    """What a profile made of the live site: stores, a store's first pages, and what went wrong."""

    base_url: str
    locator_url: str | None = None
    stores: list[LocatedStore] = field(default_factory=list)
    locator_error: str | None = None
    store: str | None = None
    store_listed: bool | None = None  # None: the locator was not read
    catalogue_url: str | None = None
    catalogue: Catalogue = field(default_factory=Catalogue)
    catalogue_error: str | None = None
    failed_page: TooManyDropped | None = None  # a page whose items mostly failed validation, with all of them
    fetched: FetchStats = field(default_factory=FetchStats)
    sent: list[SentRequest] = field(default_factory=list)  # every request, headers as set (secret masked)

    @property
    def ok(self) -> bool:
        """The locator (when read) listed stores and the catalogue gave items, without a failure."""
        return (self.locator_error is None and self.catalogue_error is None
                and bool(self.catalogue.items))


def try_profile(
    profile: Mapping[str, Any],
    base_url: str,
    settings: Settings,
    at: datetime,
    store: str | None = None,
    pages: int = 1,
    requests_per_second: float | None = None,
    session: requests.Session | None = None,
    connection_lookup: ConnectionLookup | None = None,
) -> Trial:
    """Read the store locator and the first `pages` catalogue pages of `store` (default: the first listed).

    `at` fills a `{ds}` in the base URL, as a run of that date would see it.
    Expected failures (HTTP, robots.txt, parse errors) are reported in the
    Trial, not raised: showing them is the point. A bad profile, base URL or
    argument raises ConfigError before anything is fetched.
    """
    if pages < 1:
        raise ConfigError(f"pages: expected a positive number of catalogue pages, got {pages!r}")
    chain = ChainConfig(
        TRIAL_CHAIN_ID, "(trial)", check_base_url(base_url).rstrip("/"), compile_profile(profile),
        check_requests_per_second(requests_per_second),
    ).on(at)
    if chain.profile.locator is None and store is None:
        raise ConfigError("the profile has no 'locator' to find a store with: give --store CODE")
    trial = Trial(chain.base_url)
    live = LiveFetcher(chain.base_url, chain.polite(settings), session, keep_sent=True)
    context = chain.request_context(connection_lookup)
    try:
        listed = _read_locator(chain, live, trial, context)
        if store is None:
            if not trial.stores:
                return trial  # nothing to try a catalogue on; the locator error says why
            store = next((s.code for s in trial.stores if not s.closed), trial.stores[0].code)
        trial.store = store
        trial.store_listed = None if listed is None else store in listed
        trial.catalogue_url = catalogue_url(chain, store, listed.get(store) if listed else None)
        max_pages = min(chain.profile.max_pages, settings.max_pages_per_store)
        try:
            read_catalogue(live, trial.catalogue_url, chain.profile, max_pages, stop_after=pages,
                           catalogue=trial.catalogue, headers=context.headers(store))
        except TooManyDropped as exc:
            trial.failed_page, trial.catalogue_error = exc, str(exc)
        except PricegroupsError as exc:
            trial.catalogue_error = describe_failure(exc)
    finally:
        trial.fetched = live.stats
        trial.sent = list(live.sent or ())
        if session is None:
            live.close()
    return trial


def _read_locator(chain: ChainConfig, live: LiveFetcher, trial: Trial,
                  context: ChainRequests) -> dict[str, LocatedStore] | None:
    """The stores the locator lists, by code; None when the profile has none or it could not be read."""
    if chain.profile.locator is None:
        return None
    trial.locator_url = locator_url(chain)
    try:
        trial.stores = read_locator(live, trial.locator_url, chain.profile, context.headers(None))
    except PricegroupsError as exc:
        trial.locator_error = str(exc)
        return None
    return {s.code: s for s in trial.stores}
