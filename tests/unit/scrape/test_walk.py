"""Walking a catalogue (from a snapshot, so no network): pagination, duplicates, limits, loops."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pricegroups.errors import PageLimitReached, ParseError, StoreClosed
from pricegroups.scrape.walk import Catalogue, read_catalogue
from pricegroups.scrape.fetch import FetchedPage
from pricegroups.scrape.profile import compile_profile
from pricegroups.scrape.snapshots import SnapshotKey, SnapshotStore

PROFILE = compile_profile({
    "catalogue": {"url_template": "/s/{store_code}",
                  "pagination": {"kind": "next_link", "xpath": "//a[@rel='next']/@href"},
                  "closed_marker": "boolean(//p[@class='closed'])"},
    "items": {"xpath": "//li", "fields": {"sku": "@id", "name": "b", "price": "i"}},
})


def replay(tmp_path, pages: dict[str, str]):
    store = SnapshotStore(tmp_path)
    key = SnapshotKey("c", "s", datetime(2026, 3, 2, tzinfo=timezone.utc))
    writer = store.writer(key)
    for url, html in pages.items():
        writer.add(FetchedPage(url, 200, html.encode()))
    writer.complete()
    return store.replay(key)


def tiles(*skus: str, next_href: str | None = None) -> str:
    items = "".join(f'<li id="{s}"><b>P{s}</b><i>$1.00</i></li>' for s in skus)
    link = f'<a rel="next" href="{next_href}">next</a>' if next_href else ""
    return f"<html><body><ul>{items}</ul>{link}</body></html>"


def test_all_pages_are_read_and_a_repeated_sku_is_dropped_with_its_page(tmp_path):
    fetcher = replay(tmp_path, {"http://x/s/1": tiles("a", "b", next_href="?p=2"),
                                "http://x/s/1?p=2": tiles("b", "c")})
    catalogue = read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=10)
    assert catalogue.pages == 2 and [i.sku for i in catalogue.items] == ["a", "b", "c"]
    assert [(d.sku, d.reason) for d in catalogue.dropped] == [("b", "duplicate sku (first on page 1)")]


def test_more_pages_than_allowed_fails_rather_than_truncating(tmp_path):
    fetcher = replay(tmp_path, {"http://x/s/1": tiles("a", next_href="?p=2"), "http://x/s/1?p=2": tiles("b")})
    with pytest.raises(PageLimitReached):
        read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=1)


def test_a_pagination_loop_is_a_parse_error(tmp_path):
    fetcher = replay(tmp_path, {"http://x/s/1": tiles("a", next_href="?p=2"),
                                "http://x/s/1?p=2": tiles("b", next_href="/s/1")})
    with pytest.raises(ParseError, match="loops"):
        read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=10)


def test_a_closed_store_page_raises_store_closed(tmp_path):
    fetcher = replay(tmp_path, {"http://x/s/1": '<html><body><p class="closed">Closed</p></body></html>'})
    with pytest.raises(StoreClosed):
        read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=10)


def test_a_walk_told_to_stop_early_says_which_page_comes_next(tmp_path):
    fetcher = replay(tmp_path, {"http://x/s/1": tiles("a", "b", next_href="?p=2"),
                                "http://x/s/1?p=2": tiles("b", "c")})
    first = read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=1, stop_after=1)
    assert first.pages == 1 and [i.sku for i in first.items] == ["a", "b"]
    assert first.next_url == "http://x/s/1?p=2" and first.read == [("http://x/s/1", 2, 0, None)]
    whole = read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=10, stop_after=5)
    assert whole.next_url is None and whole.read == [("http://x/s/1", 2, 0, None), ("http://x/s/1?p=2", 1, 1, None)]


def test_a_catalogue_passed_in_keeps_the_pages_read_before_a_failure(tmp_path):
    fetcher = replay(tmp_path, {"http://x/s/1": tiles("a", next_href="?p=2"),
                                "http://x/s/1?p=2": '<html><body><p class="closed">Closed</p></body></html>'})
    catalogue = Catalogue()
    with pytest.raises(StoreClosed):
        read_catalogue(fetcher, "http://x/s/1", PROFILE, max_pages=10, catalogue=catalogue)
    assert [i.sku for i in catalogue.items] == ["a"] and catalogue.read == [("http://x/s/1", 1, 0, None)]
