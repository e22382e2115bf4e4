"""The expected failures of pricegroups; anything else is a bug and propagates."""

from __future__ import annotations


class PricegroupsError(Exception):
    """Base of every expected, explainable failure."""


class ConfigError(PricegroupsError):
    """A setting, parameter or environment variable is invalid."""


class MigrationError(PricegroupsError):
    """The migrations on disk and those applied to the database disagree."""


class DataError(PricegroupsError):
    """Input data is unusable as a whole (not a single bad row: those are rejected)."""


class ScrapeError(PricegroupsError):
    """Fetching a store's catalogue failed."""


class ParseError(PricegroupsError):
    """A fetched page could not be parsed with the chain's site profile."""


class ChainDown(ScrapeError):
    """Too many of a batch's stores failed (the chain's site is down?): the task fails, so Airflow retries it.

    Raised after every store's outcome is recorded, so nothing is lost and the
    other chains' tasks go on.
    """
