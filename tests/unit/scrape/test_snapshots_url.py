"""The snapshot root is a URL: a shared directory or any fsspec filesystem, validated up front."""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timezone
from typing import Iterator

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from pricegroups.errors import ConfigError, SnapshotMiss
from pricegroups.scrape.fetch import FetchedPage
from pricegroups.scrape.snapshots import (
    SnapshotKey,
    SnapshotStore,
    parse_snapshot_root,
    snapshot_store,
    storage_options_from_connection,
)
from pricegroups.settings import Settings

AT = datetime(2026, 3, 2, tzinfo=timezone.utc)
KEY = SnapshotKey("freshmart", "FM001", AT)


@pytest.fixture
def memory() -> Iterator[MemoryFileSystem]:
    """fsspec's in-memory filesystem is process-wide: empty before and after each test."""
    def clear() -> None:
        MemoryFileSystem.store.clear()
        MemoryFileSystem.pseudo_dirs[:] = [""]

    clear()
    yield MemoryFileSystem()
    clear()


def test_a_plain_path_is_an_absolute_directory(tmp_path):
    root = parse_snapshot_root(tmp_path / "snaps")
    assert root.is_directory and root.path == str(tmp_path / "snaps")
    assert root.url == (tmp_path / "snaps").as_uri()


def test_a_relative_path_is_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_snapshot_root("var/snapshots").path == os.path.join(str(tmp_path), "var", "snapshots")


@pytest.mark.parametrize("url", ["file:///shared/snap%20shots", "file://localhost/shared/snap%20shots",
                                 "local:///shared/snap%20shots"])
def test_a_file_url_is_the_directory_it_names(url):
    root = parse_snapshot_root(url)
    assert (root.protocol, root.path) == ("file", "/shared/snap shots")


def test_a_memory_url_is_an_object_store_root():
    root = parse_snapshot_root("memory://pricegroups/snapshots/")
    assert (root.protocol, root.path, root.is_directory) == ("memory", "pricegroups/snapshots", False)
    assert root.url == "memory://pricegroups/snapshots"


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("nosuchfs://bucket/prefix", "no fsspec filesystem for scheme 'nosuchfs'"),
        ("../snapshots", "'..' is not allowed"),
        ("var/../../etc", "'..' is not allowed"),
        ("memory://bucket/../other", "'..' is not allowed"),
        ("file://otherhost/shared", "names no host"),
        ("memory://", "needs a bucket"),
        ("simplecache::memory://x", "chained"),
        ("1nvalid://x", "not a URL"),
    ],
)
def test_a_bad_root_is_a_config_error_naming_the_setting(value, message):
    with pytest.raises(ConfigError, match="snapshot_root") as caught:
        SnapshotStore(value)
    assert message in str(caught.value)


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed here")
def test_a_scheme_whose_package_is_missing_says_so():
    with pytest.raises(ConfigError, match="snapshot_root.*not installed"):
        SnapshotStore("s3://bucket/prefix")


def test_storage_options_belong_to_urls_not_directories(tmp_path, memory):
    with pytest.raises(ConfigError, match="snapshot_root"):
        SnapshotStore(tmp_path, storage_options={"key": "k"})
    SnapshotStore("memory://b", storage_options={})


def test_the_helper_builds_the_store_from_settings(memory):
    store = snapshot_store(Settings().with_overrides({"snapshot_root": "memory://b/p"}))
    assert store.root.url == "memory://b/p"


def test_write_then_replay_round_trip_on_memory(memory):
    store = SnapshotStore("memory://bucket/snapshots")
    writer = store.writer(KEY)
    writer.add(FetchedPage("http://x/final", 200, b"<html>one</html>", "text/html"), "http://x/start")
    writer.add(FetchedPage("http://x/p?page=2", 200, b"<html>two</html>"))
    assert not store.is_complete(KEY)
    writer.complete()
    assert memory.exists("/bucket/snapshots/freshmart/2026-03-02/FM001/manifest.json")
    assert memory.exists("/bucket/snapshots/freshmart/2026-03-02/FM001/0002.html.gz")
    assert SnapshotStore("memory://bucket/snapshots").is_complete(KEY)  # another store object, same root
    replay = SnapshotStore("memory://bucket/snapshots").replay(KEY)
    first = replay.fetch("http://x/start")
    assert (first.url, first.body, first.content_type) == ("http://x/final", b"<html>one</html>", "text/html")
    assert replay.fetch("http://x/p?page=2").body == b"<html>two</html>"
    assert replay.stats.requests == 0
    with pytest.raises(SnapshotMiss):
        replay.fetch("http://x/p?page=3")


def test_pages_without_a_manifest_are_never_replayed_on_memory(memory):
    store = SnapshotStore("memory://bucket/snapshots")
    writer = store.writer(KEY)
    writer.add(FetchedPage("http://x/p", 200, b"page"))  # the worker dies before complete()
    assert memory.exists("/bucket/snapshots/freshmart/2026-03-02/FM001/0001.html.gz")
    assert not store.is_complete(KEY)
    with pytest.raises(SnapshotMiss):
        store.replay(KEY)


def test_rewriting_on_memory_invalidates_the_old_snapshot_until_complete(memory):
    store = SnapshotStore("memory://bucket")
    writer = store.writer(KEY)
    writer.add(FetchedPage("http://x/p", 200, b"a"))
    writer.complete()
    again = store.writer(KEY)
    assert not store.is_complete(KEY)
    again.add(FetchedPage("http://x/p", 200, b"b"))
    again.complete()
    assert store.replay(KEY).fetch("http://x/p").body == b"b"


def test_a_file_url_and_the_plain_path_are_one_root(tmp_path):
    writer = SnapshotStore(tmp_path.as_uri()).writer(KEY)
    writer.add(FetchedPage("http://x/p", 200, b"page"))
    writer.complete()
    assert (KEY.directory(tmp_path) / "manifest.json").is_file()
    assert not list(KEY.directory(tmp_path).glob(".tmp-*"))  # temporary files were renamed, none left
    assert SnapshotStore(tmp_path).replay(KEY).fetch("http://x/p").body == b"page"


def test_connection_credentials_map_to_s3fs_storage_options():
    options = storage_options_from_connection(
        "AKIA", "secret", {"region_name": "eu-west-1", "endpoint_url": "http://minio:9000",
                           "aws_session_token": "tok"})
    assert options == {"key": "AKIA", "secret": "secret", "token": "tok", "endpoint_url": "http://minio:9000",
                       "client_kwargs": {"region_name": "eu-west-1"}}
    assert storage_options_from_connection(None, None, None) == {}
    with pytest.raises(ConfigError, match="role_arn"):
        storage_options_from_connection(None, None, {"role_arn": "arn:aws:iam::1:role/x"})
