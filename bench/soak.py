"""Benchmark: a soak — months of daily runs, to see that storage stays bounded and days stay as fast.

1. The world: the compact demo scenario (demo.generate.compact_scenario: 34
   stores in three chains and three layouts, its scripted events on days
   2-13, then ordinary days: prices keep changing every day and specials every
   week), served by the demo site in a process of its own on a loopback port.
2. A fresh database on the embedded PostgreSQL (or DATABASE_URL), and a
   snapshot root of this run's own in a temporary directory.
3. --days simulated days (default 180), one scheduled run each, through the
   pipeline's steps in the DAG's order (tests/pipeline_harness.run_day: the
   same `pricegroups.pipeline` functions the DAG's tasks call, a connection per
   step), with every setting at its default: retention included.
4. After each day, not timed: the served prices against the truth
   (demo.report.measure_day: ARI of the groups against the true zones, and
   the wrong share of every served price), the size of the project's tables
   (indexes and TOAST included; PostgreSQL's own catalogues left out) and the
   snapshot store's.
5. A day's time, against a baseline in the same process: the state after
   the first 30 runs (A; a template copy of the database, CREATE DATABASE ...
   TEMPLATE, and a copy of the snapshot root, taken when the 30th run is done)
   and the state after the last run (B) each run their next day again, from a
   fresh copy of their state each time (database and snapshot root: a replay
   must neither find its own pages already snapshotted nor rows of its own
   run), with the site set to that day. 6 pairs, interleaved A B, B A, A B, ...
   (so that the machine's noise, and whatever is first or second in a pair,
   falls on both alike); copies are made and a CHECKPOINT taken before the
   clock starts. day_s is the median of each state's six replays. Decided
   before the first reading, and not to be tuned: the method (paired
   replays), the window (6 pairs, ABBA order) and the estimator (median).
   Each replay's steps are timed as well (tests/pipeline_harness.run_day
   `timings`), and its SQL statements by their text (psycopg's
   Cursor.execute wrapped, in both states alike): their medians are printed
   side by side, the statements that grew most first.

Printed: a line every 10 days (and on days 30 and the last), the largest
tables at the end, the invariant checker's verdict, the ten-run medians of the
series (noisy: +-30 % between runs of the same code on a shared machine;
shown, not judged), each replay's time, the steps' medians, the statements
whose median grew most, then

RESULT days=180 db_mb_day30=... db_mb_day180=... snapshot_mb_day30=... snapshot_mb_day180=...
day_s_day30=... day_s_day180=... largest_table=NAME:MB ari_first30=... ari_last30=...
wrong_first30=... wrong_last30=...

with dayN the Nth run (simulated day N-1), day_s the median wall time of the
paired replays of the next day from the state after N runs (5. above), ari
the mean ARI and wrong the share of served prices that were wrong over the
first and the last 30 runs. Targets: db_mb_day180 <= 1.15 x db_mb_day30, the
same for snapshot_mb and day_s, and the last 30 days' accuracy as good as
the first 30's. With --days 30 or fewer both states are the last run's (a
check of the method's noise: the ratio should be about 1).

Usage: python bench/soak.py [--days 180] [--keep-database]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, time as clock, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]  # this worktree's library, and tests.pipeline_harness

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from day import drop_database, fresh_database, server_url  # noqa: E402  (bench/day.py: the same database helpers)

DATABASE = "pricegroups_bench_soak"
REPORT_EVERY = 10
WINDOW = 30  # runs in the first and the last accuracy window
TIMING = 10  # runs whose median the series shows (not judged: too noisy)
PAIRS = 6  # paired replays of the next day from the early and the late state (ABBA order)
MB = 1024 * 1024
# loopback site: no politeness limit; the scenario's 429/5xx bursts are retried without waiting
ENVIRONMENT = {"PRICEGROUPS_REQUESTS_PER_SECOND": "0", "PRICEGROUPS_RETRY_BACKOFF_S": "0.001",
               "PRICEGROUPS_RETRY_WAIT_CAP_S": "0.001"}


@dataclass(frozen=True)
class Day:
    day: int
    wall_s: float
    db_bytes: int
    snapshot_bytes: int
    snapshot_files: int
    ari: float
    served: int
    wrong: int
    scraped: int
    updated: int


@dataclass
class State:
    """A state to replay the next day from: a template database and a copy of the snapshot root."""

    label: str
    runs: int  # runs behind it; the next day is simulated day `runs`
    database: str
    snapshots: str
    walls: list[float] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    statements: list[dict[str, float]] = field(default_factory=list)


class StatementTimer:
    """Wall time of the SQL statements psycopg cursors execute in this process, added up by their text.

    Installed for the replays only: which statements take longer in the late state than in the early one.
    """

    def __init__(self) -> None:
        self.times: dict[str, float] | None = None  # None: not recording

    def install(self) -> None:
        original, timer = psycopg.Cursor.execute, self

        def execute(cursor: psycopg.Cursor, query: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(cursor, query, *args, **kwargs)
            finally:
                if timer.times is not None:
                    text = query.as_string(cursor) if isinstance(query, sql.Composable) else str(query)
                    key = " ".join(text.split())[:100]
                    timer.times[key] = timer.times.get(key, 0.0) + time.perf_counter() - started

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def copy_database(source: str, target: str) -> str:
    """CREATE DATABASE target TEMPLATE source (nobody may be connected to source), then a CHECKPOINT so that
    writing the copy out is not left to the timed run that follows."""
    from pricegroups import db

    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source)))
        admin.execute("CHECKPOINT")
    return db.with_database(server_url(), target)


def copy_tree(source: str, target: str) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def window(days: list[Day], first: int, size: int) -> list[Day]:
    return days[max(0, first):first + size]


def accuracy(days: list[Day]) -> tuple[float, float]:
    """(mean ARI, wrong share of every served price) over some days."""
    served = sum(d.served for d in days)
    return statistics.fmean(d.ari for d in days), (sum(d.wrong for d in days) / served if served else 0.0)


def replay(state: State, scratch: str, snapshots: str, site: Any, scenario: Any, timer: StatementTimer) -> float:
    """Run the state's next day from a fresh copy of it (database `scratch`, snapshot root `snapshots`)."""
    from tests.pipeline_harness import run_day

    conninfo = copy_database(state.database, scratch)
    copy_tree(state.snapshots, snapshots)
    os.environ["PRICEGROUPS_SNAPSHOT_ROOT"] = snapshots  # read by every step's settings
    day = state.runs
    site.set_day(day)
    when = datetime.combine(scenario.date_of(day), clock(6), tzinfo=timezone.utc)
    timings: dict[str, float] = {}
    timer.times = {}
    started = time.perf_counter()
    run = run_day(conninfo, f"scheduled__soak_{day:03d}", when, {}, run_type="scheduled", timings=timings)
    wall = time.perf_counter() - started
    state.statements.append(timer.times)
    timer.times = None
    if run.failure:
        print(f"replay of day {day} ({state.label}): the run fails: {run.failure}", flush=True)
    state.walls.append(wall)
    state.steps.append(timings)
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--keep-database", action="store_true", help=f"leave {DATABASE} to look into")
    args = parser.parse_args()
    if args.days < 1:
        print("error: --days must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    snapshots = tempfile.mkdtemp(prefix="pricegroups-soak-snapshots-")
    os.environ.update(ENVIRONMENT, PRICEGROUPS_SNAPSHOT_ROOT=snapshots)

    from pricegroups.demo.chains import register_demo_chains
    from pricegroups.demo.generate import compact_scenario
    from pricegroups.demo.report import measure_day
    from pricegroups.demo.server import DemoSiteProcess
    from pricegroups.invariants import check_invariants
    from pricegroups.migrate import migrate
    from pricegroups.retention import group_sizes, table_sizes
    from pricegroups.scrape.snapshots import SnapshotStore
    from pricegroups.settings import load_settings
    from tests.pipeline_harness import run_day

    settings = load_settings()
    print("retention: " + ", ".join(f"{f}={getattr(settings, f)}" for f in sorted(vars(settings))
                                     if f.endswith("_keep_days") or f == "retention_days"), flush=True)
    started = time.perf_counter()
    conninfo = fresh_database(DATABASE)
    scenario = compact_scenario()
    site = DemoSiteProcess(scenario, day=0)
    base_url = site.start(port=0)
    store = SnapshotStore(snapshots)
    days: list[Day] = []
    early_runs = min(WINDOW, args.days)
    early = State("A", early_runs, f"{DATABASE}_day{early_runs}", snapshots + f"-day{early_runs}")
    late = State("B", args.days, DATABASE, snapshots)
    scratch, scratch_snapshots = f"{DATABASE}_replay", snapshots + "-replay"
    try:
        with psycopg.connect(conninfo) as conn:
            migrate(conn)
            register_demo_chains(conn, base_url)
            conn.commit()
        print(f"demo site at {base_url}; database {DATABASE}; snapshots {snapshots}", flush=True)
        print(f"{'day':>4} {'wall_s':>7} {'db_mb':>7} {'snap_mb':>8} {'files':>6} {'scraped':>7} {'updated':>7} "
              f"{'ari':>6} {'wrong':>7}", flush=True)
        for day in range(args.days):
            site.set_day(day)
            when = datetime.combine(scenario.date_of(day), clock(6), tzinfo=timezone.utc)
            run_started = time.perf_counter()
            run = run_day(conninfo, f"scheduled__soak_{day:03d}", when, {}, run_type="scheduled")
            wall = time.perf_counter() - run_started
            if run.failure:
                print(f"day {day}: the run fails: {run.failure}", flush=True)
            with psycopg.connect(conninfo) as conn:
                metrics = measure_day(conn, scenario, day, run.run_id, wall)
                db_bytes = group_sizes(table_sizes(conn))["total"]
            snapshot_bytes, files = store.usage()
            days.append(Day(day, wall, db_bytes, snapshot_bytes, files, metrics.ari,
                            metrics.inferred + metrics.observed, metrics.wrong_inferred + metrics.wrong_observed,
                            metrics.scraped, metrics.updated))
            n = len(days)
            if n % REPORT_EVERY == 0 or n in (1, WINDOW, args.days):
                d = days[-1]
                print(f"{n:>4} {d.wall_s:>7.2f} {d.db_bytes / MB:>7.2f} {d.snapshot_bytes / MB:>8.2f} {files:>6} "
                      f"{d.scraped:>7} {d.updated:>7} {d.ari:>6.3f} {d.wrong / max(1, d.served):>7.4f}", flush=True)
            if n == early.runs:  # nobody is connected between days: the state can be a template
                copy_database(DATABASE, early.database)
                copy_tree(snapshots, early.snapshots)
        with psycopg.connect(conninfo) as conn:
            tables = table_sizes(conn)
            broken = [r.name for r in check_invariants(conn) if not r.ok]
            conn.rollback()
        print(f"replaying the next day from the state after {early.runs} runs (A) and after {late.runs} (B), "
              f"{PAIRS} pairs:", flush=True)
        timer = StatementTimer()
        timer.install()
        for pair in range(PAIRS):
            for state in (early, late) if pair % 2 == 0 else (late, early):
                wall = replay(state, scratch, scratch_snapshots, site, scenario, timer)
                print(f"  pair {pair + 1} {state.label} day {state.runs}: {wall:.2f} s", flush=True)
    finally:
        site.stop()
        drop_database(scratch)
        shutil.rmtree(scratch_snapshots, ignore_errors=True)
        if args.keep_database:
            print(f"kept: databases {DATABASE} and {early.database}, snapshot roots {snapshots} and {early.snapshots}")
        else:
            shutil.rmtree(early.snapshots, ignore_errors=True)
            shutil.rmtree(snapshots, ignore_errors=True)
            drop_database(DATABASE)
            drop_database(early.database)

    print("largest tables (MB, with indexes and TOAST):")
    for table, size in sorted(tables.items(), key=lambda t: -t[1])[:8]:
        print(f"  {table:<20} {size / MB:8.2f}")
    print(f"invariants after {len(days)} days: {'all hold' if not broken else 'FAILED: ' + ', '.join(broken)}")
    print(f"wall time {time.perf_counter() - started:.0f} s", flush=True)

    at = min(WINDOW, len(days))
    mid, end = days[at - 1], days[-1]
    largest = max(tables.items(), key=lambda t: t[1])
    ari_first, wrong_first = accuracy(window(days, 0, WINDOW))
    ari_last, wrong_last = accuracy(window(days, len(days) - WINDOW, WINDOW))
    series = lambda upto: statistics.median(d.wall_s for d in window(days, upto - TIMING, TIMING))  # noqa: E731
    print(f"series, median of ten runs (shown, not judged): day {at} {series(at):.2f} s, "
          f"day {len(days)} {series(len(days)):.2f} s")
    print(f"steps, median s of the replays: {'step':<20} {'A':>6} {'B':>6} {'B/A':>6}")
    for step in early.steps[0]:
        a, b = (statistics.median(t.get(step, 0.0) for t in s.steps) for s in (early, late))
        print(f"  {step:<48} {a:>6.3f} {b:>6.3f} {b / a if a else float('nan'):>6.2f}")
    growth = sorted(((b - a, a, b, text) for text in {t for r in early.statements + late.statements for t in r}
                     for a, b in [[statistics.median(r.get(text, 0.0) for r in st.statements)
                                   for st in (early, late)]]), reverse=True)
    print("statements whose median time grew most from A to B (s):")
    for change, a, b, text in growth[:6]:
        print(f"  {change:+.3f} {a:.3f} -> {b:.3f}  {text}")
    day_early, day_late = statistics.median(early.walls), statistics.median(late.walls)
    print(f"day's time, paired replays: A {day_early:.2f} s, B {day_late:.2f} s, B/A {day_late / day_early:.3f} "
          f"(target <= 1.15); per pair B/A: " + " ".join(f"{b / a:.2f}" for a, b in zip(early.walls, late.walls)))
    print(f"RESULT days={len(days)} db_mb_day{at}={mid.db_bytes / MB:.2f} db_mb_day{len(days)}={end.db_bytes / MB:.2f} "
          f"snapshot_mb_day{at}={mid.snapshot_bytes / MB:.2f} snapshot_mb_day{len(days)}={end.snapshot_bytes / MB:.2f} "
          f"day_s_day{at}={day_early:.2f} day_s_day{len(days)}={day_late:.2f} "
          f"largest_table={largest[0]}:{largest[1] / MB:.2f} ari_first30={ari_first:.3f} ari_last30={ari_last:.3f} "
          f"wrong_first30={wrong_first:.4f} wrong_last30={wrong_last:.4f}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
