"""Walk one store's catalogue: fetch a page, parse it, follow the pagination, until the end.

Only the loop lives here; bytes come from a Fetcher (live or snapshot) and
meaning from the parse engine. A store's catalogue is all-or-nothing: any
fetch or parse failure raises, and the caller records the store as failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pricegroups.errors import ParseError, ScrapeError
from pricegroups.scrape.fetch import Fetcher
from pricegroups.scrape.fields import Dropped, ScrapedItem
from pricegroups.scrape.parse import parse_page
from pricegroups.scrape.profile import SiteProfile


class StoreClosed(ScrapeError):
    """The store's catalogue says the store is closed."""


class PageLimitReached(ScrapeError):
    """The catalogue has more pages than allowed; a partial catalogue is not a catalogue."""


@dataclass
class Catalogue:
    """Every valid item of a store's catalogue, with the items dropped on the way."""

    pages: int = 0
    items: list[ScrapedItem] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    @property
    def dropped_items(self) -> int:
        """Items lost (a dropped field of a kept item does not count)."""
        return sum(1 for d in self.dropped if not d.kept)


def read_catalogue(fetcher: Fetcher, start_url: str, profile: SiteProfile, max_pages: int) -> Catalogue:
    """Fetch and parse a store's catalogue from its first page; raise on any failure."""
    catalogue = Catalogue()
    seen_skus: dict[str, int] = {}
    visited: set[str] = set()
    url: str | None = start_url
    while url is not None:
        if catalogue.pages >= max_pages:
            raise PageLimitReached(f"more than {max_pages} catalogue pages (next: {url})")
        if url in visited:
            raise ParseError(f"pagination loops back to {url}")
        visited.add(url)
        page = fetcher.fetch(url)
        result = parse_page(page.body, page.url, profile)
        catalogue.pages += 1
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
        url = result.next_url
    return catalogue

