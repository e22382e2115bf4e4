"""Benchmark: do the grouping constants hold away from the demo's own parameters?

The demo puts its near-twin lists 1.2-1.5 % apart, draws own prices on
0.1-0.4 % of a tenth of the stores and makes another tenth late with price
changes; ARI 1.0 there says little about a chain whose lists are closer or
whose stores are noisier. This bench varies the generator (demo.generate.Knobs)
one knob at a time around that default point, plus a few corners:

* near-twin list distance (share of listings on which the near-twin zone's
  list differs): 0.5 %, 1 %, 1.5 %, 3 % (against `max_member_deviation` 1 %);
* one-off glitches (per store and day, listings shown at another price that
  day only): 0.2 %, 0.8 %, 2 % (the demo has none);
* persistent own prices (own_share of the tenth of stores that have them):
  0, 0.3 %, 1 % (the demo draws 0.1-0.4 %);
* share of stores late with price changes: 0, 25 % (the demo: 10 %);
* regular-price changes a day: 2 %, 4 % (the demo: 0.6 %; a list repriced on
  more than 3 x max_member_deviation of its rows in a day is "mass
  repricing", which says nothing of a store's lateness).

Each point is a fresh database on the embedded PostgreSQL (or DATABASE_URL),
the demo site in a process of its own (DemoSiteProcess) serving the compact
scenario's world (34 stores, three chains) built with the point's knobs and
without scripted events (no moves, outages or closures: what changes between
points is the knob alone), and --days simulated days through the real
pipeline steps in the DAG's order (tests/pipeline_harness.py; no Airflow), at
the default Settings. Measured against the scenario's truth per point (the
demo report's own measures, demo/report.py):

* ARI of the last day's groups against the true price lists;
* cross-list groups: groups holding stores of two or more true lists, on the
  last day and the most on any day;
* wrong served share: served prices not observed at the store that day that
  differ from what it charges, over every day (`wrong_inferred_share` of the
  demo), and the same without the prices wrong only because the store itself
  glitched that day (no rule can infer a one-off price);
* stores scraped: share on the last day, and the mean over the days after
  the bootstrap (day 0 scrapes every store);
* the pipeline's own estimate of the wrong share, from its random
  verifications over every day, with its 95 % interval.

Prints a markdown table and ends with

RESULT points=... days=... worst_ari=... worst_wrong_share=... worst_wrong_share_ex_glitch=...
max_cross_list_groups=... max_scraped_share_last_day=... estimates_covering_truth=K/N wall_s=...

(worst_* and max_* over the points; estimates_covering_truth: of the N points
with verified members, the K whose true wrong share lies within the
pipeline's own 95 % interval). docs/sensitivity.md reads the grid.

Usage: python bench/sensitivity.py [--days 7] [--quick] [--only NAME ...] [--seed 20260302]
(--quick: five points, the one-at-a-time extremes, over 4 days.)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]  # this worktree's library, and tests/ for the pipeline harness

import psycopg  # noqa: E402

from pricegroups import db  # noqa: E402
from pricegroups.demo.chains import register_demo_chains  # noqa: E402
from pricegroups.demo.generate import Knobs, compact_scenario  # noqa: E402
from pricegroups.demo.report import DayMetrics, estimated_error, measure_day  # noqa: E402
from pricegroups.demo.scenario import Scenario  # noqa: E402
from pricegroups.demo.server import DemoSiteProcess  # noqa: E402
from pricegroups.migrate import migrate  # noqa: E402
from tests.databases import create_database, drop_database  # noqa: E402
from tests.pipeline_harness import run_day  # noqa: E402

DATABASE = "pricegroups_bench_sensitivity"
# (name, knobs): the default point, each knob one at a time, then corners
POINTS: list[tuple[str, Knobs]] = [
    ("default", Knobs()),
    ("twin 0.5%", Knobs(twin_share=0.005)),
    ("twin 1%", Knobs(twin_share=0.01)),
    ("twin 1.5%", Knobs(twin_share=0.015)),
    ("twin 3%", Knobs(twin_share=0.03)),
    ("glitch 0.2%", Knobs(glitch_share=0.002)),
    ("glitch 0.8%", Knobs(glitch_share=0.008)),
    ("glitch 2%", Knobs(glitch_share=0.02)),
    ("own 0", Knobs(own_share=0.0)),
    ("own 0.3%", Knobs(own_share=0.003)),
    ("own 1%", Knobs(own_share=0.01)),
    ("late 0", Knobs(late_stores=0.0)),
    ("late 25%", Knobs(late_stores=0.25)),
    # price changes a day: the demo's 0.6 %; above 3 x max_member_deviation every anchor's day is "mass repricing"
    ("changes 2%/day", Knobs(daily_change_rate=0.02)),
    ("changes 4%/day", Knobs(daily_change_rate=0.04)),
    # corners: twins at max_member_deviation with a little noise; a chain noisy in every way at once
    ("twin 1% + glitch 0.2%", Knobs(twin_share=0.01, glitch_share=0.002)),
    ("twin 0.5% + own 1%", Knobs(twin_share=0.005, own_share=0.01)),
    ("glitch 0.2% + own 1% + late 25%", Knobs(glitch_share=0.002, own_share=0.01, late_stores=0.25)),
]
QUICK = ("default", "twin 0.5%", "glitch 2%", "own 1%", "late 25%")
# loopback site, no outages: no rate limit, and no retry waits should anything be retried
ENVIRONMENT = {"PRICEGROUPS_REQUESTS_PER_SECOND": "0", "PRICEGROUPS_RETRY_BACKOFF_S": "0.001",
               "PRICEGROUPS_RETRY_WAIT_CAP_S": "0.001"}


@dataclass
class Point:
    """One grid point's days as the demo report measures them, and the pipeline's own estimate."""

    name: str
    knobs: Knobs
    days: list[DayMetrics] = field(default_factory=list)
    cross_list: list[int] = field(default_factory=list)  # groups holding stores of 2+ true lists, per day
    estimate: tuple[float, float, float] = (0.0, 0.0, 1.0)  # share, low, high
    checked: int = 0  # prices the random verifications checked (0: no estimate)
    wall_s: float = 0.0

    @property
    def last(self) -> DayMetrics:
        return self.days[-1]

    def wrong_share(self, without: tuple[str, ...] = ()) -> float:
        """Wrong served-not-observed prices over all days, less those of the causes in `without`."""
        inferred = sum(m.inferred for m in self.days)
        wrong = sum(m.wrong_inferred - sum(m.wrong_causes.get(c, 0) for c in without) for m in self.days)
        return wrong / inferred if inferred else 0.0

    @property
    def mean_scraped_share(self) -> float:
        """Stores scraped over stores, the days after the bootstrap (day 0 scrapes every store)."""
        later = self.days[1:] or self.days
        return sum(m.scraped for m in later) / sum(m.stores for m in later)

    @property
    def estimate_covers_truth(self) -> bool:
        """The truth's wrong share within the pipeline's own 95 % interval (the same served prices)."""
        return self.estimate[1] <= self.wrong_share() <= self.estimate[2]


def cross_list_groups(conn: psycopg.Connection, scenario: Scenario, day: int) -> int:
    """Groups holding open stores of two or more true price lists on `day` (a near-twin is a list of its own)."""
    lists: dict[int, set[str]] = defaultdict(set)
    for chain, code, group in conn.execute(
        "SELECT c.code, s.code, s.group_id FROM stores s JOIN chains c USING (chain_id) WHERE s.active"
    ):
        if scenario.is_open(chain, code, day):
            lists[group].add(f"{chain}:{scenario.zone_of(chain, code, day)}")
    return sum(1 for zones in lists.values() if len(zones) > 1)


def run_point(index: int, name: str, knobs: Knobs, days: int, seed: int, server: str, tmp: Path,
              keep: bool = False) -> Point:
    """A fresh database and site for the point's world, `days` runs of the pipeline, measured each day;
    the database is dropped afterwards unless `keep`."""
    started = time.perf_counter()
    scenario = compact_scenario(seed, knobs).with_events(())
    point = Point(name, knobs)
    os.environ["PRICEGROUPS_SNAPSHOT_ROOT"] = str(tmp / f"snapshots-{index}")  # the point's own raw pages
    with psycopg.connect(server, autocommit=True) as admin:
        create_database(admin, DATABASE)
    conninfo = db.with_database(server, DATABASE)
    site = DemoSiteProcess(scenario, workdir=str(tmp))  # its own process: the site is not the pipeline
    site.start()
    try:
        with psycopg.connect(conninfo) as conn:
            migrate(conn)
            register_demo_chains(conn, site.base_url)
            conn.commit()
        for day in range(days):
            site.set_day(day)
            when = datetime.combine(scenario.date_of(day), dtime(6), tzinfo=timezone.utc)
            day_started = time.perf_counter()
            run = run_day(conninfo, f"manual__sensitivity_{day:02d}", when)
            if run.failure:
                raise SystemExit(f"error: point {name!r}, day {day}: the run failed: {run.failure}")
            with psycopg.connect(conninfo) as conn:
                point.days.append(measure_day(conn, scenario, day, run.run_id, time.perf_counter() - day_started))
                point.cross_list.append(cross_list_groups(conn, scenario, day))
        with psycopg.connect(conninfo) as conn:
            measured = estimated_error(conn, days=None)
        point.estimate, point.checked = (measured.share, measured.low, measured.high), measured.checked
    finally:
        site.stop()
        if not keep:
            with psycopg.connect(server, autocommit=True) as admin:
                drop_database(admin, DATABASE)
    point.wall_s = time.perf_counter() - started
    return point


COLUMNS = ("point", "ARI last day", "groups / lists last day", "cross-list groups last (max)",
           "wrong served", "wrong served, store glitches excluded", "estimated (95% CI)",
           "scraped last day", "scraped mean days 1+", "wall s")


def table(points: list[Point]) -> str:
    """The grid as a markdown table, one row per point."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for p in points:
        share, low, high = p.estimate
        inferred = sum(m.inferred for m in p.days)
        wrong = ([f"{p.wrong_share():.4f}", f"{p.wrong_share(('member_glitch',)):.4f}"] if inferred
                 else ["- (none inferred)"] * 2)
        estimated = f"{share:.4f} ({low:.4f}-{high:.4f})" if p.checked else "- (no member verified)"
        cells = [p.name, f"{p.last.ari:.3f}", f"{p.last.groups} / {p.last.true_zones}",
                 f"{p.cross_list[-1]} ({max(p.cross_list)})", *wrong, estimated,
                 f"{p.last.scraped_share:.2f}", f"{p.mean_scraped_share:.2f}", f"{p.wall_s:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def causes(points: list[Point]) -> str:
    """Wrong served prices by cause (the truth's WRONG_CAUSES keys), one line per point."""
    lines = []
    for p in points:
        total: dict[str, int] = defaultdict(int)
        for m in p.days:
            for cause, n in m.wrong_causes.items():
                total[cause] += n
        text = ", ".join(f"{c} {n}" for c, n in sorted(total.items(), key=lambda x: -x[1])) or "none"
        lines.append(f"  {p.name}: {text}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="simulated days per point (default 7; --quick 4)")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, 4 days unless --days")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these points (names as in the table)")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--keep-database", action="store_true",
                        help=f"keep the last point's database ({DATABASE}) to look into")
    args = parser.parse_args()
    days = args.days or (4 if args.quick else 7)
    names = [n for n, _ in POINTS]
    wanted = args.only or (list(QUICK) if args.quick else names)
    unknown = [n for n in wanted if n not in names]
    if unknown or not 2 <= days <= 14:
        parser.error(f"unknown points {unknown} (known: {names})" if unknown else "--days must be 2-14")

    logging.basicConfig(level=logging.WARNING)
    os.environ.update(ENVIRONMENT)
    server = os.environ.get("DATABASE_URL") or db.embedded_server_url()
    started = time.perf_counter()
    points = []
    with tempfile.TemporaryDirectory(prefix="pricegroups-bench-sensitivity-") as tmp:
        for index, (name, knobs) in enumerate(POINTS):
            if name in wanted:
                point = run_point(index, name, knobs, days, args.seed, server, Path(tmp), args.keep_database)
                points.append(point)
                print(f"{name}: ARI {point.last.ari:.3f}, cross-list groups {point.cross_list},"
                      f" wrong served {point.wrong_share():.4f}, scraped last day {point.last.scraped_share:.2f}"
                      f" ({point.wall_s:.0f} s)", flush=True)
    wall_s = time.perf_counter() - started

    print(f"\n{len(points)} points, {days} days each, compact world (34 stores), default Settings\n")
    print(table(points))
    print("\nwrong served prices by cause over all days (demo/report.py WRONG_CAUSES):")
    print(causes(points))
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    if args.keep_database:
        print(f"kept database {DATABASE} (the last point's)")
    estimated = [p for p in points if p.checked]
    print(f"RESULT points={len(points)} days={days} worst_ari={min(p.last.ari for p in points):.3f}"
          f" worst_wrong_share={max(p.wrong_share() for p in points):.4f}"
          f" worst_wrong_share_ex_glitch={max(p.wrong_share(('member_glitch',)) for p in points):.4f}"
          f" max_cross_list_groups={max(max(p.cross_list) for p in points)}"
          f" max_scraped_share_last_day={max(p.last.scraped_share for p in points):.2f}"
          f" estimates_covering_truth={sum(p.estimate_covers_truth for p in estimated)}/{len(estimated)}"
          f" wall_s={wall_s:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
