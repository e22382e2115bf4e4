"""Snapshots are complete or ignored, and replay what was fetched; fetch helpers read the wire right."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from pricegroups.errors import ConfigError, ScrapeError, SnapshotMiss
from pricegroups.scrape.fetch import FetchedPage, retry_after_seconds, same_host
from pricegroups.scrape.snapshots import SnapshotKey, SnapshotStore, date_key

AT = datetime(2026, 3, 2, tzinfo=timezone.utc)


def test_a_snapshot_counts_only_once_complete(tmp_path):
    store = SnapshotStore(tmp_path)
    key = SnapshotKey("freshmart", "FM001", AT)
    writer = store.writer(key)
    writer.add(FetchedPage("http://x/p?page=1", 200, b"<html>one</html>"))
    assert not store.is_complete(key)
    with pytest.raises(SnapshotMiss):
        store.replay(key)
    writer.add(FetchedPage("http://x/p?page=2", 200, b"<html>two</html>"), "http://x/p?page=2")
    writer.complete()
    replay = store.replay(key)
    assert replay.fetch("http://x/p?page=2").body == b"<html>two</html>"
    assert replay.stats.requests == 0
    with pytest.raises(SnapshotMiss):
        replay.fetch("http://x/p?page=3")


def test_rewriting_a_snapshot_invalidates_the_old_one_until_complete(tmp_path):
    store = SnapshotStore(tmp_path)
    key = SnapshotKey("freshmart", "FM001", AT)
    writer = store.writer(key)
    writer.add(FetchedPage("http://x/p", 200, b"a"))
    writer.complete()
    store.writer(key).add(FetchedPage("http://x/p", 200, b"b"))
    assert not store.is_complete(key)


def test_a_redirected_page_replays_under_the_url_asked_for(tmp_path):
    store = SnapshotStore(tmp_path)
    key = SnapshotKey("valueway", "VW001", AT)
    writer = store.writer(key)
    writer.add(FetchedPage("http://x/final", 200, b"page"), "http://x/start")
    writer.complete()
    assert store.replay(key).fetch("http://x/start").url == "http://x/final"


def test_a_corrupt_snapshot_page_is_an_error_not_data(tmp_path):
    store = SnapshotStore(tmp_path)
    key = SnapshotKey("valueway", "VW001", AT)
    writer = store.writer(key)
    writer.add(FetchedPage("http://x/p", 200, b"page"))
    writer.complete()
    import gzip

    (key.directory(tmp_path) / "0001.html.gz").write_bytes(gzip.compress(b"tampered"))
    with pytest.raises(ScrapeError, match="corrupt"):
        store.replay(key).fetch("http://x/p")


def test_snapshot_keys_are_dates_and_safe_paths(tmp_path):
    assert date_key(AT) == "2026-03-02"
    assert date_key(AT + timedelta(hours=10, minutes=37)) == "2026-03-02T103700Z"
    with pytest.raises(ConfigError):
        date_key(datetime(2026, 3, 2))
    with pytest.raises(ConfigError):
        SnapshotKey("freshmart", "../etc", AT).directory(tmp_path)


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 <= retry_after_seconds(format_datetime(later, usegmt=True)) <= 31


def test_same_host_means_scheme_host_and_port():
    base = "http://127.0.0.1:8765"
    assert same_host("http://127.0.0.1:8765/a?b=1", base)
    assert not same_host("http://127.0.0.1:8766/a", base)
    assert not same_host("https://127.0.0.1:8765/a", base)
    assert not same_host("http://ads.example.com/click", base)
    assert not same_host("javascript:alert(1)", base)
