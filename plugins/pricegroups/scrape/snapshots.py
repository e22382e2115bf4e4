"""Raw page snapshots: what the site sent, gzip-compressed, keyed by (chain, store, logical date, page).

A re-run or backfill of a logical date re-parses what was fetched then,
with zero HTTP requests, on whichever worker runs it. Layout under the root:

    {root}/{chain}/{logical date}/{store}/0001.html.gz, 0002.html.gz, ..., manifest.json

The root (Settings.snapshot_root; in a deployment the environment variable
PRICEGROUPS_SNAPSHOT_ROOT) must be the same place for every worker:

- a path or a ``file:///shared/dir`` URL: a directory every worker mounts
  (NFS, a Docker volume). Each file is written atomically (temporary file +
  rename in the same directory);
- any other fsspec URL, e.g. ``s3://bucket/prefix``: objects are written
  directly, since an object store has no rename; a single PUT is atomic, so
  a reader sees a whole object or none.

On both, manifest.json is written last, only once every page of the store was
fetched: a snapshot without a manifest is incomplete and is never replayed.

Credentials for a URL never come from this library's settings: the caller
passes fsspec ``storage_options``. The DAG may read them from the Airflow
connection named by PRICEGROUPS_SNAPSHOT_CONN_ID (see
`storage_options_from_connection`); without one, the filesystem's own default
credentials apply (for S3, boto's chain: environment, instance role, ...).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from pricegroups.errors import ConfigError, ScrapeError, SnapshotMiss
from pricegroups.scrape.context import NO_HEADERS, RequestHeaders
from pricegroups.scrape.fetch import FetchedPage, Fetcher, FetchStats
from pricegroups.settings import Settings

MANIFEST = "manifest.json"
LOCATOR_KEY = "_locator"  # the store locator is snapshotted like a store
_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)
_DIRECTORY_PROTOCOLS = ("file", "local")  # fsspec's names for the local filesystem


def date_key(logical_date: datetime) -> str:
    """'2026-11-01' for a midnight-UTC logical date, else '2026-11-01T103700Z'."""
    if logical_date.tzinfo is None:
        raise ConfigError("logical_date must be timezone-aware")
    utc = logical_date.astimezone(timezone.utc)
    if (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0):
        return utc.strftime("%Y-%m-%d")
    return utc.strftime("%Y-%m-%dT%H%M%SZ")


# ---- the root: a shared directory or an fsspec URL ----


@dataclass(frozen=True)
class SnapshotRoot:
    """A validated snapshot root: protocol 'file' (a directory, absolute path) or an fsspec protocol."""

    protocol: str
    path: str  # the absolute directory for 'file', else the URL after '://'

    @property
    def is_directory(self) -> bool:
        return self.protocol == "file"

    @property
    def url(self) -> str:
        if self.is_directory:
            return Path(self.path).as_uri()
        return f"{self.protocol}://{self.path}"


def _invalid(root: object, reason: str) -> ConfigError:
    return ConfigError(f"snapshot_root {str(root)!r}: {reason}")


def _reject_parent_parts(root: object, path: str) -> None:
    """'..' in a root makes two workers' idea of 'the same root' depend on where they stand."""
    if ".." in re.split(r"[/\\]", path):
        raise _invalid(root, "'..' is not allowed; give the shared directory or URL itself")


def _directory_root(root: object, path: str) -> SnapshotRoot:
    _reject_parent_parts(root, path)
    return SnapshotRoot("file", os.path.abspath(path))


def _file_url_root(root: object, url: str) -> SnapshotRoot:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _invalid(root, "a file URL names no host: use file:///absolute/path")
    if parts.query or parts.fragment:
        raise _invalid(root, "a file URL takes no query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise _invalid(root, "use file:///absolute/path")
    return _directory_root(root, path)


def _filesystem_class(root: object, protocol: str) -> type:
    try:
        return fsspec.get_filesystem_class(protocol)
    except ValueError as exc:
        raise _invalid(root, f"no fsspec filesystem for scheme {protocol!r}") from exc
    except ImportError as exc:
        raise _invalid(root, f"scheme {protocol!r} needs a package that is not installed ({exc})") from exc


def parse_snapshot_root(root: str | os.PathLike) -> SnapshotRoot:
    """Validate Settings.snapshot_root; every failure is a ConfigError naming the setting."""
    text = os.fspath(root)
    if not text.strip():
        raise _invalid(root, "empty; set PRICEGROUPS_SNAPSHOT_ROOT to a shared directory or an fsspec URL")
    if "::" in text:
        raise _invalid(root, "chained fsspec URLs (caches) are not supported: a cache would hide other workers")
    match = _URL.match(text)
    if match is None:
        if "://" in text:
            raise _invalid(root, "not a URL (scheme://...) nor a path")
        return _directory_root(root, text)
    protocol, rest = match.group(1).lower(), match.group(2)
    if protocol in _DIRECTORY_PROTOCOLS:
        return _file_url_root(root, f"file://{rest}")
    if issubclass(_filesystem_class(root, protocol), LocalFileSystem):
        return _file_url_root(root, f"file://{rest}")
    if not rest.strip("/"):
        raise _invalid(root, f"{protocol}:// needs a bucket or container (and optionally a prefix)")
    _reject_parent_parts(root, rest)
    return SnapshotRoot(protocol, rest.rstrip("/"))


# ---- storage: where the bytes go, per kind of root ----


class _Storage(Protocol):
    """Files under the root by relative '/'-separated path; write is all-or-nothing for readers."""

    def describe(self, relpath: str) -> str: ...

    def exists(self, relpath: str) -> bool: ...

    def read(self, relpath: str) -> bytes: ...  # FileNotFoundError when absent

    def write(self, relpath: str, data: bytes) -> None: ...

    def remove(self, relpath: str) -> None: ...  # absent is fine

    def children(self, relpath: str) -> list[str]: ...  # names of the directories (prefixes) right under it

    def remove_tree(self, relpath: str) -> None: ...  # everything under it; absent is fine

    def usage(self) -> tuple[int, int]: ...  # (bytes, files) under the root


def _atomic_write(path: Path, data: bytes) -> None:
    """Temporary file + rename in the same directory: atomic on local filesystems and NFS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _DirectoryStorage:
    """A directory shared by every worker (local disk for one machine, NFS or a volume for several)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def describe(self, relpath: str) -> str:
        return str(self.directory / relpath)

    def exists(self, relpath: str) -> bool:
        return (self.directory / relpath).is_file()

    def read(self, relpath: str) -> bytes:
        return (self.directory / relpath).read_bytes()

    def write(self, relpath: str, data: bytes) -> None:
        _atomic_write(self.directory / relpath, data)

    def remove(self, relpath: str) -> None:
        (self.directory / relpath).unlink(missing_ok=True)

    def children(self, relpath: str) -> list[str]:
        path = self.directory / relpath if relpath else self.directory
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def remove_tree(self, relpath: str) -> None:
        shutil.rmtree(self.directory / relpath, ignore_errors=True)

    def usage(self) -> tuple[int, int]:
        size = files = 0
        for folder, _, names in os.walk(self.directory):
            for name in names:
                try:
                    size += os.stat(os.path.join(folder, name)).st_size
                    files += 1
                except FileNotFoundError:  # removed by a concurrent prune
                    pass
        return size, files


class _ObjectStorage:
    """An fsspec filesystem, written object by object: no rename, but each PUT is atomic."""

    def __init__(self, root: SnapshotRoot, storage_options: Mapping[str, Any]):
        try:
            self.fs, self.prefix = url_to_fs(root.url, **storage_options)
        except (TypeError, ValueError, ImportError) as exc:
            raise _invalid(root.url, f"cannot open it with these storage options ({exc})") from exc
        self.url = root.url

    def _path(self, relpath: str) -> str:
        return f"{self.prefix.rstrip('/')}/{relpath}"

    def describe(self, relpath: str) -> str:
        return f"{self.url}/{relpath}"

    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self._path(relpath))

    def read(self, relpath: str) -> bytes:
        return self.fs.cat_file(self._path(relpath))

    def write(self, relpath: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(relpath), data)

    def remove(self, relpath: str) -> None:
        try:
            self.fs.rm_file(self._path(relpath))
        except FileNotFoundError:
            pass

    def children(self, relpath: str) -> list[str]:
        path = self._path(relpath).rstrip("/") if relpath else self.prefix.rstrip("/")
        try:
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")

    def remove_tree(self, relpath: str) -> None:
        try:
            self.fs.rm(self._path(relpath), recursive=True)
        except FileNotFoundError:
            pass

    def usage(self) -> tuple[int, int]:
        try:
            found = self.fs.find(self.prefix.rstrip("/"), detail=True)
        except FileNotFoundError:
            return 0, 0
        return sum(int(e.get("size") or 0) for e in found.values()), len(found)


def _open_storage(root: SnapshotRoot, storage_options: Mapping[str, Any] | None) -> _Storage:
    if root.is_directory:
        if storage_options:
            raise _invalid(root.url, "storage options apply to an object-store URL, not a directory")
        return _DirectoryStorage(Path(root.path))
    return _ObjectStorage(root, storage_options or {})


# ---- keys, the store, writing and replaying ----


@dataclass(frozen=True)
class SnapshotKey:
    chain: str
    store: str
    logical_date: datetime

    def parts(self) -> tuple[str, str, str]:
        """(chain, date, store): the key's place under any root; unsafe parts are refused."""
        for part in (self.chain, self.store):
            if not _SAFE.match(part):
                raise ConfigError(f"unsafe snapshot key part {part!r}")
        return self.chain, date_key(self.logical_date), self.store

    def relative(self) -> str:
        return "/".join(self.parts())

    def directory(self, root: Path) -> Path:
        return root.joinpath(*self.parts())


class SnapshotStore:
    """The snapshot root (Settings.snapshot_root): a shared directory or an fsspec URL."""

    def __init__(self, root: str | os.PathLike, storage_options: Mapping[str, Any] | None = None):
        self.root = parse_snapshot_root(root)
        self._storage = _open_storage(self.root, storage_options)

    def is_complete(self, key: SnapshotKey) -> bool:
        return self._storage.exists(f"{key.relative()}/{MANIFEST}")

    def writer(self, key: SnapshotKey) -> "SnapshotWriter":
        """Start (re)writing a store's snapshot; an older complete one stops counting as complete."""
        self._storage.remove(f"{key.relative()}/{MANIFEST}")
        return SnapshotWriter(key, self._storage)

    def replay(self, key: SnapshotKey) -> "SnapshotReplay":
        path = f"{key.relative()}/{MANIFEST}"
        try:
            raw = self._storage.read(path)
        except FileNotFoundError as exc:
            raise SnapshotMiss(f"no complete snapshot for {key}") from exc
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise ScrapeError(f"snapshot manifest {self._storage.describe(path)} is unreadable") from exc
        return SnapshotReplay(key.relative(), manifest, self._storage)

    def dates(self) -> list[tuple[str, datetime, str]]:
        """(chain, logical date, date key) of every date directory under the root."""
        found = []
        for chain in self._storage.children(""):
            for key in self._storage.children(chain):
                when = parse_date_key(key)
                if when is not None and _SAFE.match(chain):
                    found.append((chain, when, key))
        return found

    def prune(self, before: datetime) -> int:
        """Remove every chain's snapshots of logical dates before `before`; the number of date directories.

        A re-run or backfill replays only its own date's snapshots, so the dates
        kept are exactly those such a run can still replay; one of an older date
        fetches live pages (and its summary says so).
        """
        old = [(chain, key) for chain, when, key in self.dates() if when < before]
        for chain, key in old:
            self._storage.remove_tree(f"{chain}/{key}")
        return len(old)

    def usage(self) -> tuple[int, int]:
        """(bytes, files) under the root: one listing of it, so its cost grows with the files kept."""
        return self._storage.usage()


def parse_date_key(text: str) -> datetime | None:
    """The logical date a date key (`date_key`) names; None for anything else under a chain."""
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H%M%SZ"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return None


def snapshot_store(settings: Settings, storage_options: Mapping[str, Any] | None = None) -> SnapshotStore:
    """The run's snapshot store; the DAG passes storage options (credentials) it got from Airflow."""
    return SnapshotStore(settings.snapshot_root, storage_options)


# Airflow AWS connection extras that fetch credentials some other way than a key pair
_UNSUPPORTED_EXTRAS = ("role_arn", "assume_role_method", "profile_name", "aws_profile", "session_kwargs")


def storage_options_from_connection(
    login: str | None, password: str | None, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """s3fs storage options from an Airflow connection's login, password and extra (no airflow import).

    Only static keys are mapped: a role or profile would be silently ignored,
    so it is refused; use no connection (boto's default chain) for those.
    """
    extra = dict(extra or {})
    unsupported = sorted(k for k in _UNSUPPORTED_EXTRAS if extra.get(k))
    if unsupported:
        raise ConfigError(f"snapshot_root credentials: connection extra {unsupported} is not supported; "
                          "unset PRICEGROUPS_SNAPSHOT_CONN_ID to use the worker's default AWS credentials")
    options: dict[str, Any] = {}
    if login:
        options["key"] = login
    if password:
        options["secret"] = password
    if extra.get("aws_session_token"):
        options["token"] = extra["aws_session_token"]
    if extra.get("endpoint_url"):
        options["endpoint_url"] = extra["endpoint_url"]
    if extra.get("region_name"):
        options["client_kwargs"] = {"region_name": extra["region_name"]}
    return options


class SnapshotWriter:
    def __init__(self, key: SnapshotKey, storage: _Storage):
        self.key = key
        self.storage = storage
        self.pages: list[dict] = []

    def add(self, page: FetchedPage, requested_url: str | None = None) -> None:
        number = len(self.pages) + 1
        name = f"{number:04d}.html.gz"
        body = gzip.compress(page.body, compresslevel=6, mtime=0)
        self.storage.write(f"{self.key.relative()}/{name}", body)
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
        """Mark the snapshot complete: every page of the store is stored."""
        manifest = {
            "chain": self.key.chain,
            "store": self.key.store,
            "logical_date": self.key.logical_date.isoformat(),
            "pages": self.pages,
        }
        self.storage.write(f"{self.key.relative()}/{MANIFEST}", json.dumps(manifest, indent=1).encode())


class SnapshotReplay:
    """A Fetcher serving a complete snapshot's pages by URL; never touches the network."""

    def __init__(self, relative: str, manifest: dict, storage: _Storage):
        self.relative = relative
        self.storage = storage
        self.stats = FetchStats()
        # a page reached through a redirect answers to both the URL asked for and its final URL
        self._pages = {entry["url"]: entry for entry in manifest["pages"]}
        self._pages.update({entry["requested_url"]: entry for entry in manifest["pages"]})

    def fetch(self, url: str, headers: RequestHeaders = NO_HEADERS) -> FetchedPage:
        """The page fetched from `url` (a snapshot is one store's: the store's headers are implied)."""
        entry = self._pages.get(url)
        if entry is None:
            raise SnapshotMiss(f"snapshot {self.storage.describe(self.relative)} holds no page {url}")
        path = f"{self.relative}/{entry['file']}"
        try:
            body = gzip.decompress(self.storage.read(path))
        except FileNotFoundError as exc:
            raise ScrapeError(f"snapshot page {self.storage.describe(path)} is missing") from exc
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise ScrapeError(f"snapshot page {self.storage.describe(path)} is corrupt (checksum)")
        return FetchedPage(entry["url"], entry["status"], body, entry.get("content_type"))


class RecordingFetcher:
    """Fetch through another Fetcher and keep every page in a snapshot."""

    def __init__(self, inner: Fetcher, writer: SnapshotWriter):
        self.inner = inner
        self.writer = writer

    @property
    def stats(self) -> FetchStats:
        return self.inner.stats

    def fetch(self, url: str, headers: RequestHeaders = NO_HEADERS) -> FetchedPage:
        page = self.inner.fetch(url, headers)
        self.writer.add(page, url)
        return page
