"""Fetching pages: one small interface, a polite live implementation, and errors that say why.

`LiveFetcher` is the only code that talks HTTP. It is polite by construction:
every request has a timeout and the project's User-Agent, goes through a
per-host rate limit, is checked against robots.txt, and never leaves the
profile's host (redirects are followed by hand for that reason). Connection
errors, 429 and 5xx are retried with exponential backoff and jitter, honouring
Retry-After up to a cap. Replay from snapshots (snapshots.py) implements the
same interface, so the scraper does not know where its bytes come from.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.robotparser
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, Protocol
from urllib.parse import urljoin, urlsplit

import requests

from pricegroups.errors import FetchError, HttpStatusError, OffHostError, RobotsDisallowed
from pricegroups.scrape.context import NO_HEADERS, RequestHeaders
from pricegroups.settings import Settings

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FetchedPage:
    url: str
    status: int
    body: bytes
    content_type: str | None = None


@dataclass
class FetchStats:
    """Counters for the scrape log: everything sent over the wire, and what went wrong."""

    requests: int = 0
    retries: int = 0
    http_errors: int = 0
    waited_s: float = 0.0

    def snapshot(self) -> "FetchStats":
        return FetchStats(self.requests, self.retries, self.http_errors, self.waited_s)

    def since(self, before: "FetchStats") -> "FetchStats":
        return FetchStats(
            self.requests - before.requests,
            self.retries - before.retries,
            self.http_errors - before.http_errors,
            self.waited_s - before.waited_s,
        )


@dataclass(frozen=True)
class SentRequest:
    """One HTTP request as `chains try` shows it: the headers the profile set, the secret masked."""

    method: str
    url: str
    headers: dict[str, str]
    status: int | None  # None: no answer (connection error, timeout)


class Fetcher(Protocol):
    """Where page bytes come from: the live site or a snapshot of it.

    `headers` are the profile's for this request (the store's context); a
    snapshot, kept per store, answers by URL alone.
    """

    stats: FetchStats

    def fetch(self, url: str, headers: RequestHeaders = NO_HEADERS) -> FetchedPage: ...


def same_host(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return a.scheme in ("http", "https") and a.scheme == b.scheme and a.netloc.lower() == b.netloc.lower()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class LiveFetcher:
    """HTTP over one requests.Session (one per chain per run), polite and retrying."""

    def __init__(
        self,
        base_url: str,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        keep_sent: bool = False,
    ):
        self.base_url = base_url
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = settings.user_agent
        self.stats = FetchStats()
        self.sent: list[SentRequest] | None = [] if keep_sent else None  # every request, for `chains try`
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._next_slot: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._crawl_delay: dict[str, float] = {}  # per host, from robots.txt
        rps = settings.requests_per_second
        self._interval = 1.0 / rps if 0 < rps < 1_000_000 else 0.0  # 0 (or huge) = no rate limit

    def close(self) -> None:
        self.session.close()

    def fetch(self, url: str, headers: RequestHeaders = NO_HEADERS) -> FetchedPage:
        """GET a page of the profile's host with the profile's headers; follows same-host redirects only."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_allowed(url)
            response = self._get_with_retries(url, headers)
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if not 200 <= response.status_code < 300:
                raise HttpStatusError(f"HTTP {response.status_code} for {url}", url, response.status_code)
            content_type = response.headers.get("Content-Type")
            return FetchedPage(url, response.status_code, response.content, content_type)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}", url)

    def _check_allowed(self, url: str) -> None:
        if not same_host(url, self.base_url):
            raise OffHostError(f"not following {url}: not on {urlsplit(self.base_url).netloc}", url)
        robots = self._robots_for(url)
        if not robots.can_fetch(self.settings.user_agent, url):
            raise RobotsDisallowed(f"robots.txt disallows {url}", url)

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        parser = self._robots.get(key)
        if parser is None:
            parser = urllib.robotparser.RobotFileParser(key + "/robots.txt")
            try:
                response = self._get_with_retries(key + "/robots.txt")
            except FetchError as exc:
                raise FetchError(f"robots.txt unreachable, not crawling {key}: {exc}", url) from exc
            if response.status_code >= 500:
                # RFC 9309: an unreachable robots.txt means "disallow everything"
                raise FetchError(f"robots.txt answered {response.status_code}; not crawling {key}", url)
            if 200 <= response.status_code < 300:
                parser.parse(response.text.splitlines())
            else:
                parser.parse([])  # 4xx: no robots.txt, everything allowed
            self._robots[key] = parser
            delay = parser.crawl_delay(self.settings.user_agent)
            if delay:
                self._crawl_delay[parts.netloc] = float(delay)
        return parser

    def _wait_for_slot(self, url: str) -> None:
        """Space requests to one host by the rate limit (or robots.txt's Crawl-delay, if longer)."""
        if not self._interval:
            return  # off: loopback demo and tests only
        host = urlsplit(url).netloc
        now = time.monotonic()
        slot = max(now, self._next_slot.get(host, now))
        self._next_slot[host] = slot + max(self._interval, self._crawl_delay.get(host, 0.0))
        if slot > now:
            self._sleep(slot - now)

    def _get_with_retries(self, url: str, headers: RequestHeaders = NO_HEADERS) -> requests.Response:
        settings = self.settings
        attempt = 0
        while True:
            self._wait_for_slot(url)
            self.stats.requests += 1
            try:
                response = self.session.get(url, headers=dict(headers.values) or None,
                                            timeout=settings.http_timeout_s, allow_redirects=False)
            except requests.RequestException as exc:  # connection reset, timeout, broken chunking
                self._note(url, headers, None)
                self.stats.http_errors += 1
                if attempt >= settings.http_retries:
                    message = f"{type(exc).__name__} for {url} after {attempt} retries: {exc}"
                    raise FetchError(message, url) from exc
                delay = self._backoff(attempt)
                log.info("retrying %s in %.2fs after %s", url, delay, type(exc).__name__)
            else:
                self._note(url, headers, response.status_code)
                if response.status_code < 400 or response.status_code in REDIRECT_STATUSES:
                    return response
                self.stats.http_errors += 1
                if response.status_code not in RETRY_STATUSES or attempt >= settings.http_retries:
                    return response
                hinted = retry_after_seconds(response.headers.get("Retry-After"))
                delay = self._backoff(attempt) if hinted is None else min(hinted, settings.retry_wait_cap_s)
                log.info("retrying %s in %.2fs after HTTP %s", url, delay, response.status_code)
                response.close()
            attempt += 1
            self.stats.retries += 1
            self.stats.waited_s += delay
            self._sleep(delay)

    def _note(self, url: str, headers: RequestHeaders, status: int | None) -> None:
        if self.sent is not None:
            self.sent.append(SentRequest("GET", url, headers.shown(), status))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full-range jitter (0.5x..1.5x), capped."""
        base = self.settings.retry_backoff_s * (2**attempt)
        return min(base * self._rng.uniform(0.5, 1.5), self.settings.retry_wait_cap_s)
