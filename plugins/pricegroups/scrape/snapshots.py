"""Raw page snapshots: what the site sent, gzip-compressed, keyed by (chain, store, logical date, page).

A re-run or backfill of a logical date re-parses what was fetched then,
with zero HTTP requests. Layout under the root:

    {root}/{chain}/{logical date}/{store}/0001.html.gz, 0002.html.gz, ..., manifest.json

Each page file is written atomically (temporary file + rename). manifest.json
is written last, only once every page of the store was fetched: a snapshot
without a manifest is incomplete and is never replayed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pricegroups.errors import ConfigError, ScrapeError
from pricegroups.scrape.fetch import FetchedPage, Fetcher, FetchStats

MANIFEST = "manifest.json"
LOCATOR_KEY = "_locator"  # the store locator is snapshotted like a store
_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class SnapshotMiss(ScrapeError):
    """Replay asked for a URL the snapshot does not hold (the profile changed its URLs?)."""


def date_key(logical_date: datetime) -> str:
    """'2026-11-01' for a midnight-UTC logical date, else '2026-11-01T103700Z'."""
    if logical_date.tzinfo is None:
        raise ConfigError("logical_date must be timezone-aware")
    utc = logical_date.astimezone(timezone.utc)
    if (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0):
        return utc.strftime("%Y-%m-%d")
    return utc.strftime("%Y-%m-%dT%H%M%SZ")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class SnapshotKey:
    chain: str
    store: str
    logical_date: datetime

    def directory(self, root: Path) -> Path:
        for part in (self.chain, self.store):
            if not _SAFE.match(part):
                raise ConfigError(f"unsafe snapshot key part {part!r}")
        return root / self.chain / date_key(self.logical_date) / self.store


class SnapshotStore:
    """The snapshot root (Settings.snapshot_root): a local directory."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def is_complete(self, key: SnapshotKey) -> bool:
        return (key.directory(self.root) / MANIFEST).is_file()

    def writer(self, key: SnapshotKey) -> "SnapshotWriter":
        """Start (re)writing a store's snapshot; an older complete one stops counting as complete."""
        directory = key.directory(self.root)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)
        return SnapshotWriter(key, directory)

    def replay(self, key: SnapshotKey) -> "SnapshotReplay":
        directory = key.directory(self.root)
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SnapshotMiss(f"no complete snapshot for {key}") from exc
        return SnapshotReplay(directory, manifest)


class SnapshotWriter:
    def __init__(self, key: SnapshotKey, directory: Path):
        self.key = key
        self.directory = directory
        self.pages: list[dict] = []

    def add(self, page: FetchedPage, requested_url: str | None = None) -> None:
        number = len(self.pages) + 1
        name = f"{number:04d}.html.gz"
        _atomic_write(self.directory / name, gzip.compress(page.body, compresslevel=6, mtime=0))
        self.pages.append({
            "page": number,
            "url": page.url,
            "requested_url": requested_url or page.url,
            "status": page.status,
            "content_type": page.content_type,
            "file": name,
            "bytes": len(page.body),
            "sha256": hashlib.sha256(page.body).hexdigest(),
        })

    def complete(self) -> None:
        """Mark the snapshot complete: every page of the store is on disk."""
        manifest = {
            "chain": self.key.chain,
            "store": self.key.store,
            "logical_date": self.key.logical_date.isoformat(),
            "pages": self.pages,
        }
        _atomic_write(self.directory / MANIFEST, json.dumps(manifest, indent=1).encode())


class SnapshotReplay:
    """A Fetcher serving a complete snapshot's pages by URL; never touches the network."""

    def __init__(self, directory: Path, manifest: dict):
        self.directory = directory
        self.stats = FetchStats()
        # a page reached through a redirect answers to both the URL asked for and its final URL
        self._pages = {entry["url"]: entry for entry in manifest["pages"]}
        self._pages.update({entry["requested_url"]: entry for entry in manifest["pages"]})

    def fetch(self, url: str) -> FetchedPage:
        entry = self._pages.get(url)
        if entry is None:
            raise SnapshotMiss(f"snapshot {self.directory} holds no page {url}")
        body = gzip.decompress((self.directory / entry["file"]).read_bytes())
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise ScrapeError(f"snapshot page {self.directory / entry['file']} is corrupt (checksum)")
        return FetchedPage(entry["url"], entry["status"], body, entry.get("content_type"))


class RecordingFetcher:
    """Fetch through another Fetcher and keep every page in a snapshot."""

    def __init__(self, inner: Fetcher, writer: SnapshotWriter):
        self.inner = inner
        self.writer = writer

    @property
    def stats(self) -> FetchStats:
        return self.inner.stats

    def fetch(self, url: str) -> FetchedPage:
        page = self.inner.fetch(url)
        self.writer.add(page, url)
        return page
