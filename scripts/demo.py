"""The main job: run the pricegroups DAG over N simulated days against the demo chain site.

Starts the embedded PostgreSQL (unless DATABASE_URL is set) and the demo site,
prepares a local Airflow home (SQLite metadata), then runs the real DAG with
`dag.test()` once per simulated day, advancing the site's day, and prints what
a user wants to see: stores scraped against all stores, groups found against
true zones, inferred prices that were wrong, the upsert's counts and the group
changes. Writes the same as an HTML report under reports/.

Usage: python scripts/demo.py [--days 14] [--runs-per-day N | --every-days N]

The DAG runs daily by default; `--runs-per-day 2` schedules it at 06:00 and
18:00 (PRICEGROUPS_SCHEDULE "0 6,18 * * *"), `--every-days 2` every other
day ("2d"). The grouping rules' time windows follow the schedule's interval
(grouping/rules/cadence.py); the site changes its prices once a day whatever
the cadence, as a chain does.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
AIRFLOW_HOME = VAR / "airflow-demo"
DEMO_DATABASE = "pricegroups_demo"


def prepare_environment() -> None:
    """Everything Airflow reads at import time must be set before its first import."""
    os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    os.environ["PRICEGROUPS_REQUESTS_PER_SECOND"] = "0"  # loopback demo site: no rate limit
    os.environ["PRICEGROUPS_SNAPSHOT_ROOT"] = str(VAR / "demo-snapshots")


def airflow_metadata() -> None:
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    marker = AIRFLOW_HOME / ".migrated"
    if not marker.exists():
        print("initialising Airflow's metadata database (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        marker.touch()
    subprocess.run(
        [sys.executable, "-m", "airflow", "pools", "set", "pricegroups_scrape", "4", "concurrent store scrapes"],
        check=True, capture_output=True,
    )


def schedule_of(runs_per_day: int, every_days: int) -> str:
    """The DAG's schedule for the cadence asked: runs from 06:00, evenly over the day, or every N days."""
    if every_days > 1:
        return f"{every_days}d"
    if runs_per_day > 1:
        return f"0 {','.join(str(6 + k * 24 // runs_per_day) for k in range(runs_per_day))} * * *"
    return "@daily"


def run_times(scenario, days: int, runs_per_day: int, every_days: int) -> list[tuple[int, datetime]]:
    """(simulated day, logical date) of every run: `runs_per_day` a day from 06:00, on every `every_days`th day."""
    return [(day, datetime.combine(scenario.date_of(day), dtime(6), tzinfo=timezone.utc)
             + timedelta(hours=k * 24 // runs_per_day))
            for day in range(0, days, every_days) for k in range(runs_per_day)]


def fresh_database() -> str:
    """A new, empty pricegroups database for this demo; returns its conninfo."""
    import psycopg
    from psycopg import sql

    from pricegroups import db

    server = os.environ.get("DATABASE_URL") or db.embedded_server_url()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEMO_DATABASE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
    return db.with_database(server, DEMO_DATABASE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=int(os.environ.get("DAYS", "14")))
    parser.add_argument("--runs-per-day", type=int, default=1, help="runs per simulated day (a divisor of 24)")
    parser.add_argument("--every-days", type=int, default=1, help="one run every N simulated days")
    args = parser.parse_args()
    if not 1 <= args.days <= 60:
        print("error: --days must be between 1 and 60", file=sys.stderr)
        return 2
    if args.runs_per_day < 1 or 24 % args.runs_per_day or args.runs_per_day > 6:
        print("error: --runs-per-day must be 1, 2, 3, 4 or 6", file=sys.stderr)
        return 2
    if not 1 <= args.every_days <= 7 or (args.every_days > 1 and args.runs_per_day > 1):
        print("error: --every-days must be between 1 and 7, and not combined with --runs-per-day", file=sys.stderr)
        return 2
    started = time.perf_counter()
    prepare_environment()
    os.environ["PRICEGROUPS_SCHEDULE"] = schedule_of(args.runs_per_day, args.every_days)
    shutil.rmtree(VAR / "demo-snapshots", ignore_errors=True)
    logging.basicConfig(level=logging.WARNING)

    import psycopg

    from pricegroups.demo.generate import default_scenario
    from pricegroups.demo.report import (causes_text, estimated_error, html_report, measure_day, price_accuracy,
                                         text_table, truth_maps, wrong_by_cause)
    from pricegroups.demo.server import DemoSiteProcess
    from pricegroups.migrate import migrate
    from pricegroups.pipeline import DEFAULT_PARAMS
    from pricegroups.db import airflow_connection_json
    from pricegroups.demo.chains import register_demo_chains

    conninfo = fresh_database()
    os.environ["AIRFLOW_CONN_PRICEGROUPS_DB"] = airflow_connection_json(conninfo)
    airflow_metadata()
    scenario = default_scenario()
    site = DemoSiteProcess(scenario, day=0)  # its own process: the site's pages are not the pipeline's cost
    base_url = site.start(port=0)
    print(f"demo site at {base_url}; database {DEMO_DATABASE}; Airflow home {AIRFLOW_HOME}", flush=True)

    with psycopg.connect(conninfo) as conn:
        migrate(conn)
        register_demo_chains(conn, base_url)
        conn.commit()

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        print(f"error: the DAG does not load: {bag.import_errors}", file=sys.stderr)
        return 1
    dag = bag.dags["pricegroups_daily"]

    days = []
    served = [0, 0]  # every served price of every simulated day (with or without a run) and the wrong ones
    try:
        for day, logical_date in run_times(scenario, args.days, args.runs_per_day, args.every_days):
            site.set_day(day)
            day_started = time.perf_counter()
            # every param, every time: in-process dag.test() keeps params from the previous call
            dag_run = dag.test(logical_date=logical_date, run_conf=dict(DEFAULT_PARAMS))
            wall = time.perf_counter() - day_started
            if str(dag_run.state) not in ("success", "DagRunState.SUCCESS"):
                print(f"error: the run of day {day} ended {dag_run.state}", file=sys.stderr)
                return 1
            with psycopg.connect(conninfo) as conn:
                metrics = measure_day(conn, scenario, day, dag_run.run_id, wall)
                served[0] += metrics.inferred + metrics.observed
                served[1] += metrics.wrong_inferred + metrics.wrong_observed
                # the days until the next run are served what this run left: scored against their own truth
                for later in range(day + 1, min(day + args.every_days, args.days)):
                    between = price_accuracy(conn, scenario, later)
                    served[0] += between.inferred + between.observed
                    served[1] += between.wrong_inferred + between.wrong_observed
            days.append(metrics)
            print(text_table(days).splitlines()[-1] if len(days) > 1 else text_table(days), flush=True)
    finally:
        site.stop()

    with psycopg.connect(conninfo) as conn:
        measured = estimated_error(conn, days=None)  # the pipeline's own estimate over every demo day
        maps = truth_maps(conn, scenario, days[-1].day)  # the last day's groups over the true zones
    wall_s = time.perf_counter() - started
    last = days[-1]
    inferred = sum(m.inferred for m in days)
    wrong = sum(m.wrong_inferred for m in days)
    final = {
        "days": args.days,
        "runs": len(days),
        "schedule": os.environ["PRICEGROUPS_SCHEDULE"],
        "wall_s": round(wall_s, 1),
        "stores": last.stores,
        "scraped_last_day": last.scraped,
        "scraped_share_last_day": round(last.scraped_share, 3),
        "scrapes_total": sum(m.scraped for m in days),
        "scrapes_if_every_store_daily": sum(m.stores for m in days),
        "pages_total": sum(m.pages for m in days),
        "spot_pages_total": sum(m.spot_pages for m in days),
        "spot_suspects_total": sum(m.spot_suspects for m in days),
        "spot_page_share": round(sum(m.spot_pages for m in days) / max(1, sum(m.pages + m.spot_pages for m in days)), 3),
        "groups_last_day": last.groups,
        "true_zones_last_day": last.true_zones,
        "ari_last_day": round(last.ari, 3),
        "inferred_prices_checked": inferred,
        "wrong_inferred": wrong,
        "wrong_inferred_share": round(wrong / inferred, 4) if inferred else 0.0,
        "wrong_inferred_by_cause": wrong_by_cause(days),
        "served_wrong_share_every_day": round(served[1] / served[0], 4) if served[0] else 0.0,
        "verified_stores": measured.stores,
        "verified_prices_checked": measured.checked,
        "estimated_wrong_share": round(measured.share, 4),
        "estimated_wrong_low": round(measured.low, 4),
        "estimated_wrong_high": round(measured.high, 4),
        # the random draws' own share (had no check reached the members), and the prices no check reached
        "draws_wrong_share": (round(measured.share / measured.unverified_share, 4)
                              if measured.unverified_share else 0.0),
        "unverified_share": round(measured.unverified_share, 3),
    }
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    report_path = reports / "demo.html"
    report_path.write_text(html_report(days, final, maps), encoding="utf-8")
    print()
    print("summary: " + ", ".join(f"{k}={v}" for k, v in final.items()))
    if wrong:
        print("wrong inferred prices by cause (the scenario's truth says why):")
        print(causes_text(days))
    print(f"HTML report: {report_path}")
    print(f"wall time {wall_s:.0f} s")
    print(
        f"RESULT days={args.days} runs={len(days)} wall_s={wall_s:.0f} scraped_share_last_day={last.scraped_share:.2f} "
        f"ari_last_day={last.ari:.3f} wrong_inferred_share={final['wrong_inferred_share']:.4f} "
        f"estimated_wrong_share={measured.share:.4f} served_wrong_share_every_day={final['served_wrong_share_every_day']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "plugins"))
    sys.exit(main())
