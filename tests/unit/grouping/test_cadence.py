"""The run cadence: every window of the rules from one interval, and the interval from the DAG's schedule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pricegroups.errors import ConfigError
from pricegroups.grouping.rules.cadence import DAILY, LAG, Cadence, changes_per_day
from pricegroups.schedule import interval_hours, parse_schedule

H = timedelta(hours=1)
AT = datetime(2026, 3, 2, 6, tzinfo=timezone.utc)


def test_the_daily_cadence_has_the_windows_the_rules_were_written_with():
    assert (DAILY.fresh, DAILY.horizon, DAILY.before) == (12 * H, 48 * H, 24 * H)
    assert DAILY.runs_before(AT) == (AT - 36 * H, AT - 12 * H)


@pytest.mark.parametrize("hours, fresh, horizon, before", [(12, 18, 36, 24), (48, 24, 72, 48), (6, 21, 30, 24)])
def test_windows_follow_the_interval_and_a_late_store_stays_a_day_behind(hours, fresh, horizon, before):
    cadence = Cadence.of_hours(hours)
    assert (cadence.fresh, cadence.horizon, cadence.before) == (fresh * H, horizon * H, before * H)
    # a change a late store has not applied yet (younger than LAG) is still fresh at the next run
    assert cadence.fresh >= LAG - cadence.interval / 2 and cadence.fresh >= cadence.interval / 2


def test_a_cadence_must_have_a_positive_interval():
    with pytest.raises(ValueError):
        Cadence(timedelta(0))


def test_changes_per_day_divides_by_the_span_the_changes_cover():
    last = AT
    assert changes_per_day(10, 100, last - 10 * 24 * H, last, DAILY) == pytest.approx(0.10)
    # every other day: the changes first seen at the last scrape are two days' worth
    assert changes_per_day(10, 100, last - 10 * 24 * H, last, Cadence.of_hours(48)) == pytest.approx(0.05)
    # an anchor with no earlier run, or no rows, says nothing
    assert changes_per_day(10, 100, last - 6 * H, last, DAILY) is None
    assert changes_per_day(0, 0, last - 10 * 24 * H, last, DAILY) is None


@pytest.mark.parametrize("text, hours", [("@daily", 24), (None, 24), ("0 6,18 * * *", 12), ("0 */6 * * *", 6),
                                         ("2d", 48), ("12h", 12), ("1.5d", 36)])
def test_the_run_interval_is_the_time_to_the_schedules_next_run(text, hours):
    assert interval_hours(parse_schedule(text), AT) == hours
    assert interval_hours(parse_schedule(text), AT + 12 * H) == hours


def test_a_schedule_that_is_neither_cron_nor_an_interval_is_refused():
    for bad in ("every day", "0 25 * * *", "0h", "-2d"):
        with pytest.raises(ConfigError, match="PRICEGROUPS_SCHEDULE"):
            parse_schedule(bad)
    assert interval_hours(None, AT) is None and interval_hours("@once", AT) is None
