"""The storage interface's rules: which anchor rows are changes, fresh changes, late evidence, the same price;
one definition each, read by both storages (storage.py) from plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from pricegroups.grouping import storage
from pricegroups.grouping.pgstorage import _DEDUP
from pricegroups.grouping.rules.cadence import DAILY, Cadence, RowsAt, anchor_change_share, is_change, is_fresh_change
from pricegroups.grouping.rules.compare import repriced_en_masse
from pricegroups.grouping.rules.lateness import Lateness, Seen, count_anchor
from pricegroups.grouping.rules.serving import SAME_PRICE_DB_COLUMNS, SAME_PRICE_FIELDS, PriceRow
from pricegroups.grouping.storage import AnchorHistory, AnchorSeen, MemberSeen
from pricegroups.settings import Settings

T0 = datetime(2026, 3, 10, 6, tzinfo=timezone.utc)
H = timedelta(hours=1)
FIRST = T0 - 30 * 24 * H


@pytest.mark.parametrize("hours", [6, 12, 24, 48])
def test_no_criterion_of_an_anchors_rows_reaches_back_past_before_so_older_rows_may_be_one_bar(hours):
    cadence = Cadence.of_hours(hours)
    edge = T0 - cadence.before
    for at in (edge, edge - H, edge - 100 * H):
        assert not is_change(at, FIRST, T0, cadence)
        assert not is_fresh_change(at, True, T0, cadence)
    assert is_change(edge + H, FIRST, T0, cadence)


def test_a_change_is_after_the_first_scrape_and_a_fresh_change_replaced_a_regular_price():
    assert not is_change(T0 - H, T0 - H, T0, DAILY)  # a price the anchor had from its first scrape
    assert is_fresh_change(T0 - DAILY.fresh, True, T0, DAILY)
    assert not is_fresh_change(T0, False, T0, DAILY)  # new product or special: no previous price
    assert not is_fresh_change(T0 - DAILY.fresh - H, True, T0, DAILY)


def test_the_change_share_of_a_histogram_is_the_share_of_its_rows():
    rows = [RowsAt(T0 - 200 * H, False, 90), RowsAt(T0 - 200 * H, True, 4), RowsAt(T0, True, 5),
            RowsAt(T0, False, 1)]
    assert anchor_change_share(rows, FIRST, T0, DAILY) == pytest.approx(0.06)  # 6 of 100 in a day
    lumped = [RowsAt(T0 - DAILY.before, False, 94), *rows[2:]]  # older rows as one bar: the same share
    assert anchor_change_share(lumped, FIRST, T0, DAILY) == anchor_change_share(rows, FIRST, T0, DAILY)
    assert anchor_change_share(rows, None, T0, DAILY) is None
    assert anchor_change_share(rows, T0 - 6 * H, T0, DAILY) is None  # no earlier run


def test_an_anchor_repriced_en_masse_counts_only_its_fresh_regular_changes():
    settings = Settings()  # 3 % of a list is a mass change at a calm chain
    calm = 0.005
    many = [RowsAt(T0 - 300 * H, False, 90), RowsAt(T0, True, 10)]
    assert repriced_en_masse(many, T0, calm, DAILY, settings)
    assert not repriced_en_masse([RowsAt(T0 - 300 * H, False, 90), RowsAt(T0, False, 10)], T0, calm, DAILY, settings)
    assert not repriced_en_masse([RowsAt(T0 - 300 * H, True, 90), RowsAt(T0, True, 2)], T0, calm, DAILY, settings)
    assert not repriced_en_masse(many, None, calm, DAILY, settings) and not repriced_en_masse([], T0, calm, DAILY,
                                                                                              settings)


def test_an_anchors_lateness_counts_only_changes_of_its_latest_scrape_and_observations_of_the_runs_before():
    row = PriceRow(120, 0, False, T0, 100)
    day_before = [Seen(120, False, T0 - 24 * H)]
    assert count_anchor({"p": day_before}, {"p": row}, DAILY, T0) == Lateness(1, 0)
    # a change first seen two runs ago is not this scrape's
    assert count_anchor({"p": day_before}, {"p": row}, DAILY, T0 + 24 * H) == Lateness(0, 0)
    # an observation older than the runs before the change says nothing of it
    assert count_anchor({"p": [Seen(120, False, T0 - 48 * H)]}, {"p": row}, DAILY, T0) == Lateness(0, 0)


def test_the_same_price_is_one_rule_for_the_book_and_the_database():
    row = PriceRow(100, 150, True, T0, 0)
    assert row.same_price(PriceRow(100, 150, True, T0 - 5 * H, 90))  # when first observed does not matter
    for field in SAME_PRICE_FIELDS:
        other = row._replace(**{field: not row.on_special if field == "on_special" else 1})
        assert not row.same_price(other), field
    for column in SAME_PRICE_FIELDS + SAME_PRICE_DB_COLUMNS:
        assert f"m.{column}" in _DEDUP and f"a.{column}" in _DEDUP, column


@dataclass
class ListStorage:
    """The smallest storage: plain lists, to show the readings need nothing else."""

    histories: list[AnchorHistory]
    members: list[MemberSeen]
    anchors: list[AnchorSeen]
    cadence: Cadence = DAILY

    def anchor_histories(self) -> list[AnchorHistory]:
        return self.histories

    def observations(self, skip_groups):
        return ([m for m in self.members if m.store not in skip_groups],
                [a for a in self.anchors if a.store not in skip_groups])

    def deduplicate(self, pairs):
        return {}


def test_the_readings_run_on_any_storage_and_a_repriced_group_is_no_evidence():
    calm = [RowsAt(T0 - 300 * H, False, 99), RowsAt(T0, True, 1)]
    repriced = [RowsAt(T0 - 300 * H, False, 80), RowsAt(T0, True, 20)]
    histories = [AnchorHistory("m", "c", FIRST, T0, tuple(calm)), AnchorHistory("n", "c", FIRST, T0, tuple(repriced))]
    change = PriceRow(120, 0, False, T0, 100)
    late = {"p": Seen(100, False, T0)}
    members = [MemberSeen("m", T0, late, {"p": change}), MemberSeen("n", T0, late, {"p": change})]
    anchors = [AnchorSeen("m", T0, T0, {"p": [Seen(120, False, T0 - 24 * H)]}, {"p": change})]
    plain = ListStorage(histories, members, anchors)  # groups keyed by their store, for brevity
    assert storage.change_rates(plain) == {"c": pytest.approx(0.01 * 0.5 + 0.2 * 0.5)}  # the median of two
    assert storage.repriced_groups(plain, {"c": 0.01}, Settings()) == {"n"}
    # "m" is a member of this run: its own count comes first; "n" was repriced en masse
    assert storage.count_lateness(plain, {"c": 0.01}, Settings()) == {"m": (Lateness(1, 0), T0)}
