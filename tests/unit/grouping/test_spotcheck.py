"""The spot-check verdict: a page that disagrees beyond timing sends a member to a full scrape."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from pricegroups.grouping.spotcheck import SpotPrice, judge
from pricegroups.settings import Settings

NOW = datetime(2026, 3, 10, 6, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=5)


def price(sku: str, seen: str, served: str, since: datetime = OLD, special: bool = False) -> SpotPrice:
    return SpotPrice(sku, (Decimal(seen), None, special), (Decimal(served), None, False), since, "inferred")


def test_a_page_that_agrees_is_not_suspect():
    verdict = judge([price(f"S{i}", "2.50", "2.50") for i in range(40)], NOW, Settings())
    assert (verdict.compared, verdict.mismatched, verdict.timing, verdict.suspect) == (40, 0, 0, False)


def test_differences_on_prices_that_just_changed_are_timing():
    page = [price(f"S{i}", "2.50", "2.50") for i in range(37)]
    page += [price(f"T{i}", "2.50", "2.70", since=NOW - timedelta(hours=20)) for i in range(3)]
    verdict = judge(page, NOW, Settings())
    assert (verdict.mismatched, verdict.timing, verdict.suspect) == (0, 3, False)


def test_one_unexplained_difference_is_tolerated_two_are_not():
    page = [price(f"S{i}", "2.50", "2.50") for i in range(38)]
    one = judge(page + [price("X1", "3.00", "2.50")], NOW, Settings())
    two = judge(page + [price("X1", "3.00", "2.50"), price("X2", "1.00", "1.20")], NOW, Settings())
    assert (one.mismatched, one.suspect) == (1, False)
    assert (two.mismatched, two.suspect) == (2, True)
    assert [e["sku"] for e in two.examples] == ["X1", "X2"]


def test_a_special_the_store_runs_and_the_served_row_lacks_is_a_difference():
    page = [price(f"S{i}", "2.50", "2.50") for i in range(30)]
    page += [price("X1", "2.50", "2.50", special=True), price("X2", "2.50", "2.50", special=True)]
    assert judge(page, NOW, Settings()).suspect


def test_the_threshold_grows_with_the_page_by_the_member_deviation():
    settings = Settings(max_member_deviation=0.05)
    page = [price(f"S{i}", "2.50", "2.50") for i in range(97)] + [price(f"X{i}", "3.00", "2.50") for i in range(3)]
    assert not judge(page, NOW, settings).suspect  # 3 < ceil(0.05 x 100) = 5
    page += [price(f"Y{i}", "3.00", "2.50") for i in range(3)]  # 6 of 103: ceil(5.15) = 6
    assert judge(page, NOW, settings).suspect


def test_nothing_compared_is_not_suspect():
    assert not judge([], NOW, Settings()).suspect


def test_a_price_the_served_store_had_from_its_first_scrape_is_not_a_change():
    first = NOW - timedelta(hours=30)
    page = [price(f"S{i}", "2.50", "2.50") for i in range(30)]
    page += [SpotPrice(f"X{i}", (Decimal("3.00"), None, False), (Decimal("2.50"), None, False), first, "inferred",
                       first) for i in range(2)]
    verdict = judge(page, NOW, Settings())
    assert (verdict.mismatched, verdict.timing, verdict.suspect) == (2, 0, True)


def test_a_difference_several_members_show_is_the_anchors_not_theirs():
    from pricegroups.grouping.spotcheck import shared_differences

    common = [price(f"S{i}", "2.50", "2.50") for i in range(30)]
    late_anchor = [price("A1", "3.00", "2.80"), price("A2", "2.19", "1.79")]  # the anchor missed a change
    moved = [price(f"M{i}", "4.00", "3.50") for i in range(5)]
    pages = {1: common + late_anchor, 2: common + late_anchor, 3: common + late_anchor + moved}
    shared = shared_differences(pages, NOW)
    assert shared == {("A1", (Decimal("3.00"), None, False)), ("A2", (Decimal("2.19"), None, False))}
    assert not judge(pages[1], NOW, Settings(), shared).suspect
    mover = judge(pages[3], NOW, Settings(), shared)
    assert (mover.mismatched, mover.shared, mover.suspect) == (5, 2, True)
    assert judge(pages[1], NOW, Settings()).suspect, "without the group's pages the late anchor looks like a move"


def test_members_that_show_the_anchors_differences_are_sent_to_re_elect_it():
    from pricegroups.grouping.spotcheck import anchor_witnesses, shared_differences

    common = [price(f"S{i}", "2.50", "2.50") for i in range(30)]
    late_anchor = [price("A1", "3.00", "2.80"), price("A2", "2.19", "1.79")]
    pages = {4: common + late_anchor, 2: common + late_anchor[:1], 3: common + late_anchor, 1: common}
    shared = shared_differences(pages, NOW)
    assert anchor_witnesses(pages, shared, Settings()) == [3, 4], "the two showing most of them, then by id"
    assert anchor_witnesses(pages, shared, Settings(), exclude=[3]) == [4, 2]
    one = shared_differences({1: common + late_anchor[:1], 2: common + late_anchor[:1]}, NOW)
    assert anchor_witnesses(pages, one, Settings()) == [], "one shared difference is below the threshold"


def test_one_difference_the_previous_check_showed_too_is_enough():
    """A store that moved to a near-twin zone differs on one product of its page, run after run: below the
    threshold each time, but a difference that repeats is neither a glitch nor timing."""
    page = [price(f"S{i}", "2.50", "2.50") for i in range(38)] + [price("X1", "3.00", "2.50")]
    assert judge(page, NOW, Settings()).suspect is False
    again = judge(page, NOW, Settings(), before={("X1", "3.00")})
    assert (again.mismatched, again.repeated, again.suspect) == (1, 1, True)
    # the same product at another price, or another product, is no repetition
    assert judge(page, NOW, Settings(), before={("X1", "2.90")}).suspect is False
    assert judge(page, NOW, Settings(), before={("X2", "3.00")}).suspect is False
    # a difference timing explains does not count, repeated or not
    timing = [price(f"S{i}", "2.50", "2.50") for i in range(38)]
    timing += [price("X1", "3.00", "2.50", since=NOW - timedelta(hours=20))]
    assert judge(timing, NOW, Settings(), before={("X1", "3.00")}).suspect is False
