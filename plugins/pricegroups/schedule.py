"""The DAG's schedule and the run interval the grouping rules derive their windows from (grouping/rules/cadence.py).

`PRICEGROUPS_SCHEDULE` sets the schedule: a cron expression or preset
("@daily", "0 6,18 * * *") or a fixed interval in hours or days ("12h", "2d").
The run interval is the time from one scheduled run to the next: for a cron
schedule, the gap after the run's own logical date, so "0 6,18 * * *" gives
12 hours at either run. No Airflow imports: the DAG passes its schedule's
expression or timedelta.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pricegroups.errors import ConfigError

DEFAULT_SCHEDULE = "@daily"
PRESETS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_FIXED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hd])\s*$")


def parse_schedule(text: str | None) -> str | timedelta:
    """A schedule for the DAG from its text: a cron expression or preset, or a timedelta for "12h" / "2d"."""
    text = (text or "").strip() or DEFAULT_SCHEDULE
    fixed = _FIXED.match(text)
    if fixed:
        amount = float(fixed.group(1))
        interval = timedelta(hours=amount) if fixed.group(2) == "h" else timedelta(days=amount)
        if interval <= timedelta(0):
            raise ConfigError(f"PRICEGROUPS_SCHEDULE {text!r}: the interval must be positive")
        return interval
    from croniter import croniter

    if not croniter.is_valid(PRESETS.get(text, text)):
        raise ConfigError(f"PRICEGROUPS_SCHEDULE {text!r} is neither a cron expression, a preset nor '<n>h' / '<n>d'")
    return text


def interval_hours(schedule: str | timedelta | None, at: datetime) -> float | None:
    """Hours from the run at `at` to the schedule's next run; None for a schedule without runs (manual only)."""
    if schedule is None:
        return None
    if isinstance(schedule, timedelta):
        return schedule.total_seconds() / 3600
    from croniter import croniter

    expression = PRESETS.get(schedule, schedule)
    if expression.startswith("@"):  # @once, @continuous: no regular interval
        return None
    start = croniter(expression, at).get_prev(datetime) if not croniter.match(expression, at) else at
    following = croniter(expression, start).get_next(datetime)
    return (following - start).total_seconds() / 3600
