"""Walk one store's catalogue: fetch a page, parse it, follow the pagination, until the end.

Only the loop lives here; bytes come from a Fetcher (live or snapshot) and
meaning from the parse engine. A store's catalogue is all-or-nothing: any
fetch or parse failure raises, and the caller records the store as failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from pricegroups.errors import PageLimitReached, ParseError, StoreClosed
from pricegroups.scrape.context import NO_HEADERS, RequestHeaders
from pricegroups.scrape.fetch import Fetcher
from pricegroups.scrape.fields import Dropped, ScrapedItem
from pricegroups.scrape.parse import LocatedStore, parse_locator_page, parse_page
from pricegroups.scrape.profile import JsonLocator, SiteProfile


class PageRead(NamedTuple):
    """One page as it was read: where, how many items it gave and how many it lost (for `chains try`)."""

    url: str
    items: int
    dropped: int
    note: str | None = None  # why the page gave no items, when the layout can tell


@dataclass
class Catalogue:
    """Every valid item of a store's catalogue, with the items dropped on the way.

    `next_url` is the page after the last one read: None once the catalogue has
    ended, a URL when the walk was told to stop early (`stop_after`).
    """

    pages: int = 0
    items: list[ScrapedItem] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    read: list[PageRead] = field(default_factory=list)
    next_url: str | None = None

    @property
    def dropped_items(self) -> int:
        """Items lost (a dropped field of a kept item does not count)."""
        return sum(1 for d in self.dropped if not d.kept)


def read_catalogue(
    fetcher: Fetcher, start_url: str, profile: SiteProfile, max_pages: int,
    stop_after: int | None = None, catalogue: Catalogue | None = None, headers: RequestHeaders = NO_HEADERS,
) -> Catalogue:
    """Fetch and parse a store's catalogue from its first page; raise on any failure.

    `stop_after` pages, the walk ends early without error (a trial of a profile
    reads the first pages only). A `catalogue` passed in keeps what was read
    before a failure, for a caller that shows it. `headers` go with every
    request (the store's context: a header or cookie naming the store).
    """
    catalogue = Catalogue() if catalogue is None else catalogue
    seen_skus: dict[str, int] = {}
    visited: set[str] = set()
    url: str | None = start_url
    while url is not None:
        if stop_after is not None and catalogue.pages >= stop_after:
            break
        if catalogue.pages >= max_pages:
            raise PageLimitReached(f"more than {max_pages} catalogue pages (next: {url})")
        if url in visited:
            raise ParseError(f"pagination loops back to {url}")
        visited.add(url)
        page = fetcher.fetch(url, headers)
        result = parse_page(page.body, page.url, profile)
        catalogue.pages += 1
        items_before, dropped_before = len(catalogue.items), len(catalogue.dropped)
        if result.closed:
            raise StoreClosed(f"store closed ({page.url})")
        for item in result.items:
            first = seen_skus.get(item.sku)
            if first is not None:
                catalogue.dropped.append(
                    Dropped(item.sku, f"duplicate sku (first on page {first})", {"page_url": page.url})
                )
                continue
            seen_skus[item.sku] = catalogue.pages
            catalogue.items.append(item)
        catalogue.dropped.extend(result.dropped)
        lost = sum(1 for d in catalogue.dropped[dropped_before:] if not d.kept)
        catalogue.read.append(PageRead(page.url, len(catalogue.items) - items_before, lost, result.note))
        url = result.next_url
    catalogue.next_url = url
    return catalogue



def read_locator(fetcher: Fetcher, start_url: str, profile: SiteProfile,
                 headers: RequestHeaders = NO_HEADERS) -> list[LocatedStore]:
    """Every store the locator lists, over all its pages (a json locator paginates); closed ones too.

    A store listed twice keeps its first entry; a locator listing no store,
    or with more pages than its `max_pages`, is a failure.
    """
    rule = profile.locator
    max_pages = rule.max_pages if isinstance(rule, JsonLocator) else 1
    found: dict[str, LocatedStore] = {}
    visited: set[str] = set()
    url: str | None = start_url
    while url is not None:
        if len(visited) >= max_pages:
            raise PageLimitReached(f"more than {max_pages} store locator pages (next: {url})")
        if url in visited:
            raise ParseError(f"store locator pagination loops back to {url}")
        visited.add(url)
        page = fetcher.fetch(url, headers)
        result = parse_locator_page(page.body, page.url, profile)
        for store in result.stores:
            found.setdefault(store.code, store)
        url = result.next_url
    if not found:
        raise ParseError(f"{start_url}: the store locator lists no stores")
    return list(found.values())
