"""One place for tunables: defaults, then environment (PRICEGROUPS_*), then run params."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from pricegroups.errors import ConfigError
from pricegroups.grouping.rules.cadence import Cadence

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# the window the run summary, `groups show`, the UI and the demo report estimate the served error over
# (grouping/verification.py); here because verification retention must cover it (Settings.validate)
ESTIMATE_DAYS = 14


@dataclass(frozen=True)
class Settings:
    """Every tunable of a run. Frozen: a run's settings never change under it."""

    window_hours: int = 72
    # the time between two runs: the DAG derives it from its schedule; the grouping rules' time windows
    # derive from it (grouping/rules/cadence.py), so a twice-daily or every-other-day schedule keeps the rules
    run_interval_hours: float = 24.0
    # grouping (docs/grouping.md): the largest share of a store's prices that may be its own deviations
    # from its anchor; differences that other stores share are a different list whatever this says
    max_member_deviation: float = 0.01
    shared_deviation_tolerance: float = 0.002  # shared disagreements a MATCH tolerates (coincidences)
    daily_change_rate: float = 0.01  # prior for timing until a chain's own rate is measured
    min_overlap_products: int = 30
    min_overlap_share: float = 0.5
    verify_interval_days: int = 7
    verify_budget_share: float = 0.10  # members scraped to verify them, per run, as a share of members
    verify_random_share: float = 0.5  # of that budget, drawn at random (the unbiased error estimate)
    # spot checks (docs/verification.md): catalogue pages read of every member not scraped (0: none), and
    # the fewest disagreements beyond timing that send a member to a full scrape in the same run
    spot_check_pages: int = 1
    # anchor election: a member with this much larger a catalogue (and no noisier) takes over (health.py)
    anchor_coverage_margin: float = 0.02
    spot_check_min_mismatches: int = 2
    # late stores (grouping/lateness.py): the days of late / on-time changes that say a store is usually late
    lateness_days: int = 28
    anchor_failures_before_succession: int = 3
    price_ceiling: Decimal = Decimal("10000.00")
    retention_days: int = 14
    unit_price_tolerance: float = 0.25  # catalogue: site vs computed unit price, relative gap flagged
    staging_keep_days: int = 14  # catalogue: scraped_items older than this are deleted in post-process
    suspect_share: float = 0.70
    max_failed_share: float = 0.5  # a scrape batch with more failed stores than this fails its task (retried)
    max_map_instances: int = 32  # cap on any mapped task's instances (Airflow's max_map_length is 1,024)
    map_min_stores: int = 40  # fewer stores than this a scrape batch is not worth a task instance
    # a health check of 200 groups, or a comparison of 2,000 anchor pairs, takes a few seconds since the
    # checks read set-based and the engine scans blocks of pairs: fewer are not worth a task instance
    # (bench/day.py at 2,000 stores: 200 pairs a batch made 12 instances and 130 statements of loading)
    map_min_groups: int = 200
    map_min_pairs: int = 2000
    requests_per_second: float = 5.0  # per host; 0 turns the rate limit off (loopback demo only)
    http_timeout_s: float = 20.0
    http_retries: int = 5  # retries after the first attempt, on connection errors, 429 and 5xx
    retry_backoff_s: float = 0.5  # first backoff; doubles per retry, with jitter
    retry_wait_cap_s: float = 30.0  # longest wait for one retry, whatever Retry-After asks
    max_pages_per_store: int = 200
    user_agent: str = "pricegroups/0.1 (+https://github.com/pricegroups/pricegroups)"
    # upsert chunk: whole stores, at most this many rows (a bigger store alone); commits: see upsert.py
    upsert_batch_rows: int = 250_000
    snapshot_root: str = str(PROJECT_ROOT / "var" / "snapshots")
    # retention of what runs write (docs/operations.md "What is kept, and for how long"): days before the run's
    # logical date; each at least what the rules reading it need (validate says which and refuses less)
    snapshot_keep_days: int = 14  # raw pages: a re-run or backfill of a date this recent replays them
    scrape_log_keep_days: int = 30
    spot_check_keep_days: int = 7
    lateness_keep_days: int = 30  # store_lateness: the lateness sums read lateness_days of it
    verification_keep_days: int = 30  # verifications (and always each store's last measured one)
    rejected_keep_days: int = 30
    comparison_keep_days: int = 30  # remembered comparisons not made again for this long are forgotten
    run_keep_days: int = 90  # runs (their summary): outlive every per-run row, so each row's date stays known
    retention_chunk_rows: int = 10_000  # rows deleted per statement (and transaction) when pruning
    # grouping: blocking compares only stores sharing a price on this many widely carried products
    blocking_basket: int = 256

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    def current_since(self, as_of: datetime) -> datetime:
        """The oldest scrape that is *current pricing* at `as_of` (DESIGN §2): the one place the rule lives."""
        return as_of - self.window

    def is_current(self, scraped_at: datetime | None, as_of: datetime) -> bool:
        """Whether prices scraped at `scraped_at` are current pricing at `as_of` (never scraped: no)."""
        return scraped_at is not None and scraped_at >= self.current_since(as_of)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Settings":
        """Return a copy with the given fields replaced, each coerced and validated."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in overrides.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
            changes[name] = _coerce(name, type(getattr(self, name)), raw)
        result = dataclasses.replace(self, **changes)
        result.validate()
        return result

    def validate(self) -> None:
        if self.window_hours <= 0:
            raise ConfigError(f"window_hours must be positive, got {self.window_hours}")
        if not 0 < self.run_interval_hours <= 24 * 31:
            raise ConfigError(f"run_interval_hours must be above 0 and at most 744 (31 days), got {self.run_interval_hours}")
        if not 0 <= self.max_member_deviation < 0.5:
            raise ConfigError(f"max_member_deviation must be in [0, 0.5), got {self.max_member_deviation}")
        if not 0 <= self.shared_deviation_tolerance < 0.5:
            raise ConfigError(f"shared_deviation_tolerance must be in [0, 0.5), got {self.shared_deviation_tolerance}")
        if not 0 <= self.daily_change_rate <= 1:
            raise ConfigError(f"daily_change_rate must be in [0, 1], got {self.daily_change_rate}")
        if not 0 <= self.max_failed_share < 1:
            raise ConfigError(f"max_failed_share must be in [0, 1), got {self.max_failed_share}")
        if not 0 <= self.verify_random_share <= 1:
            raise ConfigError(f"verify_random_share must be in [0, 1], got {self.verify_random_share}")
        if not 0 <= self.min_overlap_share <= 1:
            raise ConfigError(f"min_overlap_share must be in [0, 1], got {self.min_overlap_share}")
        if not 0 <= self.verify_budget_share <= 1:
            raise ConfigError(f"verify_budget_share must be in [0, 1], got {self.verify_budget_share}")
        if self.price_ceiling <= 0:
            raise ConfigError(f"price_ceiling must be positive, got {self.price_ceiling}")
        if self.http_timeout_s <= 0 or self.http_retries < 0 or self.retry_wait_cap_s < 0:
            raise ConfigError("http_timeout_s must be positive; http_retries and retry_wait_cap_s not negative")
        if self.max_pages_per_store < 1 or self.requests_per_second < 0:
            raise ConfigError("max_pages_per_store must be at least 1 and requests_per_second not negative")
        if self.blocking_basket < 1:
            raise ConfigError(f"blocking_basket must be at least 1, got {self.blocking_basket}")
        if self.retention_days < 1 or self.staging_keep_days < 1 or self.unit_price_tolerance <= 0:
            raise ConfigError("retention_days, staging_keep_days and unit_price_tolerance must be positive")
        if not 0 <= self.anchor_coverage_margin <= 1:
            raise ConfigError(f"anchor_coverage_margin must be in [0, 1], got {self.anchor_coverage_margin}")
        if self.spot_check_pages < 0 or self.spot_check_min_mismatches < 1:
            raise ConfigError("spot_check_pages must not be negative and spot_check_min_mismatches at least 1")
        if self.lateness_days < 1:
            raise ConfigError(f"lateness_days must be at least 1, got {self.lateness_days}")
        if self.max_map_instances < 1 or self.upsert_batch_rows < 1:
            raise ConfigError("max_map_instances and upsert_batch_rows must be at least 1")
        self._validate_retention()

    def retention_needs(self) -> list[tuple[str, int, str, str]]:
        """(setting, days it must be at least, the setting or rule that needs it, why): what validate enforces."""
        # spot checks and staged items of the runs before a change are read by lateness, and a spot check's
        # differences are judged against changes within the timing horizon (grouping/rules/cadence.py)
        cadence = Cadence.of_hours(self.run_interval_hours)
        cadence_days = math.ceil(max(cadence.horizon, cadence.fresh + cadence.before) / timedelta(days=1))
        per_run = ("snapshot_keep_days", "scrape_log_keep_days", "spot_check_keep_days", "lateness_keep_days",
                   "verification_keep_days", "rejected_keep_days", "comparison_keep_days", "staging_keep_days")
        return [
            ("lateness_keep_days", self.lateness_days, "lateness_days", "store lateness is summed over it"),
            ("verification_keep_days", ESTIMATE_DAYS, "ESTIMATE_DAYS",
             "the served-error estimate reads that many days of verifications"),
            ("spot_check_keep_days", cadence_days, "run_interval_hours",
             "lateness and spot-check judging read the runs before a change at this cadence"),
            ("staging_keep_days", cadence_days, "run_interval_hours",
             "lateness reads the staged items of the runs before a change at this cadence"),
            ("scrape_log_keep_days", self.staging_keep_days, "staging_keep_days",
             "the invariant checker ties each staged item to its scrape log row"),
            ("rejected_keep_days", self.staging_keep_days, "staging_keep_days",
             "the invariant checker explains staged items by their rejections"),
            *((("run_keep_days", getattr(self, name), name, "a run's row outlives its per-run rows"))
              for name in per_run),
        ]

    def _validate_retention(self) -> None:
        names = [f.name for f in fields(self) if f.name.endswith("_keep_days")]
        low = [n for n in names if getattr(self, n) < 1]
        if low or self.retention_chunk_rows < 1:
            raise ConfigError(f"{', '.join(low) or 'retention_chunk_rows'} must be at least 1")
        for setting, needed, by, why in self.retention_needs():
            if getattr(self, setting) < needed:
                raise ConfigError(f"{setting}={getattr(self, setting)} keeps less than {by} needs ({needed} days): "
                                  f"{why}; raise {setting} or lower {by}")


def _coerce(name: str, kind: type, raw: Any) -> Any:
    try:
        if kind is bool:
            if isinstance(raw, str):
                if raw.lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(raw)
            return bool(raw)
        if kind is int and isinstance(raw, float) and not raw.is_integer():
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ConfigError(f"setting {name}={raw!r} is not a valid {kind.__name__}") from exc


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overridden by PRICEGROUPS_<NAME> environment variables, then by `overrides`."""
    env = os.environ if environ is None else environ
    from_env = {
        f.name: env[f"PRICEGROUPS_{f.name.upper()}"]
        for f in fields(Settings)
        if f"PRICEGROUPS_{f.name.upper()}" in env
    }
    settings = Settings().with_overrides(from_env)
    return settings.with_overrides(overrides or {})
