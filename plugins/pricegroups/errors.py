"""The expected failures of pricegroups, all of them; anything else is a bug and propagates.

    PricegroupsError
    ├── ConfigError          a setting, param, profile or environment variable is invalid
    ├── MigrationError       migrations on disk and in the database disagree
    ├── BadData              input data unusable as a whole (a price file, a price matrix)
    ├── NotFound             a chain or run asked for does not exist (the UI's 404)
    ├── ScrapeError          a store's catalogue could not be read
    │   ├── FetchError       a page could not be fetched (carries url, status)
    │   │   ├── HttpStatusError, RobotsDisallowed, OffHostError
    │   ├── SnapshotMiss     replay asked for a page its snapshot does not hold
    │   ├── StoreClosed, PageLimitReached
    │   └── ChainDown        too many of a scrape batch's stores failed
    └── ParseError           a page does not parse with the chain's site profile
        └── TooManyDropped   most of a page's items failed validation

MoneyError is the one outside the tree: a ValueError that the field parsers turn
into a dropped item (with its reason), never a failure of the scrape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pricegroups.scrape.fields import Dropped, ScrapedItem


class PricegroupsError(Exception):
    """Base of every expected, explainable failure."""


class ConfigError(PricegroupsError):
    """A setting, parameter or environment variable is invalid."""


class MigrationError(PricegroupsError):
    """The migrations on disk and those applied to the database disagree."""


class BadData(PricegroupsError):
    """Input data is unusable as a whole (not a single bad row: those are rejected)."""


class NotFound(PricegroupsError):
    """The chain or run asked for does not exist."""


class ScrapeError(PricegroupsError):
    """Fetching a store's catalogue failed."""


class FetchError(ScrapeError):
    """A page could not be fetched (after retries, where retrying made sense)."""

    def __init__(self, message: str, url: str, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class HttpStatusError(FetchError):
    """The site answered with a status that is not a page (after retries for 429/5xx)."""


class RobotsDisallowed(FetchError):
    """robots.txt disallows this URL for our User-Agent."""


class OffHostError(FetchError):
    """A link or redirect leads to another host than the profile's; it is never followed."""


class SnapshotMiss(ScrapeError):
    """Replay asked for a URL the snapshot does not hold (the profile changed its URLs?)."""


class StoreClosed(ScrapeError):
    """The store's catalogue says the store is closed."""


class PageLimitReached(ScrapeError):
    """The catalogue has more pages than allowed; a partial catalogue is not a catalogue."""


class ChainDown(ScrapeError):
    """Too many of a batch's stores failed (the chain's site is down?): the task fails, so Airflow retries it.

    Raised after every store's outcome is recorded, so nothing is lost and the
    other chains' tasks go on.
    """


class ParseError(PricegroupsError):
    """A fetched page could not be parsed with the chain's site profile."""


class TooManyDropped(ParseError):
    """Most of a page's items failed validation: a changed site, not bad items.

    Carries the page's items and drops, so that `chains try` can show every
    reason instead of a sample.
    """

    def __init__(self, message: str, items: tuple[ScrapedItem, ...], dropped: tuple[Dropped, ...]):
        super().__init__(message)
        self.items = items
        self.dropped = dropped


class MoneyError(ValueError):
    """The text is not an amount of money in a format we understand."""
