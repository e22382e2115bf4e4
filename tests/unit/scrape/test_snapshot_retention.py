"""Snapshot retention: dates older than the cutoff go, on a directory and on an object store alike."""

from datetime import datetime, timezone

import pytest

from pricegroups.errors import SnapshotMiss
from pricegroups.scrape.fetch import FetchedPage
from pricegroups.scrape.snapshots import SnapshotKey, SnapshotStore, parse_date_key

PAGE = "http://site.test/fm/S1?page=1"


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=timezone.utc)


def write(store: SnapshotStore, chain: str, code: str, when: datetime) -> None:
    writer = store.writer(SnapshotKey(chain, code, when))
    writer.add(FetchedPage(PAGE, 200, b"<html>" + code.encode() * 50 + b"</html>", "text/html"))
    writer.complete()


@pytest.fixture(params=["directory", "object store"])
def store(request, tmp_path) -> SnapshotStore:
    if request.param == "directory":
        return SnapshotStore(tmp_path / "snapshots")
    import fsspec

    fsspec.filesystem("memory").store.clear()
    return SnapshotStore(f"memory://bucket/{tmp_path.name}")


def test_dates_before_the_cutoff_are_removed_and_the_rest_still_replays(store):
    for day in (1, 2, 3, 4):
        write(store, "fm", "S1", at(day))
        write(store, "vw", "_locator", at(day))
    write(store, "fm", "S1", at(3, 10))  # a run at another time of day than midnight
    files_before = store.usage()[1]

    assert store.prune(at(3)) == 4  # days 1 and 2 of both chains
    kept = sorted((chain, key) for chain, _, key in store.dates())
    assert kept == [("fm", "2026-03-03"), ("fm", "2026-03-03T100000Z"), ("fm", "2026-03-04"),
                    ("vw", "2026-03-03"), ("vw", "2026-03-04")]
    assert store.replay(SnapshotKey("fm", "S1", at(3))).fetch(PAGE).status == 200
    with pytest.raises(SnapshotMiss):  # a backfill of day 2 would fetch live pages
        store.replay(SnapshotKey("fm", "S1", at(2)))
    assert store.usage()[1] == files_before - 4 * 2  # a page and a manifest per store and date
    assert store.prune(at(3)) == 0


def test_usage_counts_every_byte_written(store):
    assert store.usage() == (0, 0)
    write(store, "fm", "S1", at(1))
    size, files = store.usage()
    assert files == 2 and size > 0


def test_only_date_keys_name_dates():
    assert parse_date_key("2026-03-01") == at(1)
    assert parse_date_key("2026-03-01T103700Z") == datetime(2026, 3, 1, 10, 37, tzinfo=timezone.utc)
    assert parse_date_key("S1") is None and parse_date_key("2026-13-01") is None
