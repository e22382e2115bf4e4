"""DAG runs of pricegroups_daily for the fault campaign (bench/chaos.py), in a process that may be killed.

Runs `dag.test()` for a logical date and conf with Airflow's metadata in
`--home` (SQLite) and writes what happened (run state, task states) as JSON to
a result file. The run id is the one Airflow gives a manual run of that date
(`run_after` = the logical date), so a re-run of a date is the same run. The
parent sets the pricegroups environment (database connection, snapshot root,
HTTP settings); this script sets Airflow's before importing it.

Two modes:

  one run:  --date ISO --result FILE [--conf JSON] [--kill SPEC | --fail SPEC]
  serve:    --serve: warm up (Airflow, the DAG, the in-process execution API:
            ~15 s a process), then run one command per stdin line, a JSON object
            {"date", "run_after", "conf", "result", "kill", "fail", "label"}, until
            stdin closes.
            A run that kills the process ends the server; the campaign starts
            another. Paying the warm-up once per process instead of once per run
            halves the campaign's wall time.

Two deterministic ways to break a run, both defined by a task and a point in
it, never by wall-clock time (docs/chaos.md):

  kill TASK[:CHAIN]@POINT   the process SIGKILLs itself there (no cleanup, no
                            finally blocks: as the OOM killer or a lost worker
                            would leave it; PostgreSQL rolls back the open
                            transaction when the socket closes)
  fail TASK[:CHAIN]@POINT   the task raises AirflowFailException there (a hard
                            failure: no retry; downstream tasks do not run)

POINT is `before` (the task's pipeline function is entered), `after` (it
returned, before Airflow records the task's success) or `commitN` (at its Nth
call of psycopg's Connection.commit, before that commit: the transaction is
open). A task that commits fewer than N times breaks at `after`. CHAIN picks
one chain's scrape task. Before breaking, the point is written to
RESULT.broke. The hook wraps `pricegroups.pipeline`'s functions in this process
only; library code is never changed.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
WARM_UP_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the DAG's start_date: tasks exist; no demo day

# the DAG's tasks that call a pricegroups.pipeline function, each the function of the task's name
TASKS = (
    "start", "plan", "scrape", "resolve", "reconcile", "enrich", "upsert", "post_process", "find_stale_anchors",
    "rescrape_anchors", "upsert_rescraped", "health_check_batches", "health_check", "candidate_pairs",
    "compare_pairs", "merge_groups", "summary",
)


def parse_spec(spec: str) -> dict[str, Any]:
    """TASK[:CHAIN]@POINT -> {"task", "chain", "point", "commit"}."""
    target, _, point = spec.partition("@")
    task, _, chain = target.partition(":")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} in {spec!r}; known: {', '.join(TASKS)}")
    commit = int(point[len("commit") :]) if point.startswith("commit") and point[6:].isdigit() else None
    if point not in ("before", "after") and (commit is None or commit < 1):
        raise ValueError(f"point must be before, after or commitN, not {point!r}")
    return {"task": task, "chain": chain or None, "point": point, "commit": commit}


def prepare_environment(home: Path) -> None:
    """Everything Airflow reads at import time must be set before its first import."""
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


class Breaker:
    """Wraps pricegroups.pipeline's step functions (once); `arm()` picks where the next run breaks."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None
        self.mode = ""
        self.marker: Path | None = None
        self.depth = 0
        self.armed = False
        self.commits = 0
        self.done = False
        self._install()

    def arm(self, spec: str | None, mode: str, marker: Path | None) -> None:
        self.spec = parse_spec(spec) if spec else None
        self.mode, self.marker = mode, marker
        self.depth, self.armed, self.commits, self.done = 0, False, 0, False

    def _break(self, where: str) -> None:
        self.done = True
        spec = self.spec
        point = f"{spec['task']}{':' + spec['chain'] if spec['chain'] else ''}@{where}"
        if self.marker is not None:
            self.marker.write_text(f"{self.mode} {point}\n")  # the kernel keeps it when we die
        print(f"chaos: {self.mode} at {point}", flush=True)
        if self.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)  # never reached
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"chaos: a hard failure at {point}")

    def _matches(self, name: str, args: tuple, kwargs: dict) -> bool:
        spec = self.spec
        if spec is None or self.done or self.depth != 0:
            return False  # only the task's own call, never one step calling another
        if name != spec["task"]:
            return False
        if spec["chain"] is not None:
            batch = args[2] if len(args) > 2 else kwargs.get("batch") or {}
            return batch.get("chain") == spec["chain"]
        return True

    def _wrap(self, name: str, original: Callable) -> Callable:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outer = self.depth == 0
            armed = self._matches(name, args, kwargs)
            if armed and self.spec["point"] == "before":
                self._break("before")
            self.depth += 1
            if outer:
                self.armed = armed
            try:
                result = original(*args, **kwargs)
            finally:
                self.depth -= 1
                if outer:
                    self.armed = False
            if armed and not self.done:
                commit = self.spec["commit"]
                self._break("after" if commit is None else f"after (fewer than {commit} commits)")
            return result

        return wrapper

    def _install(self) -> None:
        import psycopg

        from pricegroups import pipeline

        for name in TASKS:
            setattr(pipeline, name, self._wrap(name, getattr(pipeline, name)))
        real_commit = psycopg.Connection.commit
        breaker = self

        def commit(conn: Any) -> None:
            if breaker.armed and not breaker.done and breaker.spec["commit"] is not None:
                breaker.commits += 1
                if breaker.commits == breaker.spec["commit"]:
                    breaker._break(f"commit{breaker.spec['commit']}")
            return real_commit(conn)

        psycopg.Connection.commit = commit  # type: ignore[method-assign]


class Runner:
    def __init__(self) -> None:
        from airflow.dag_processing.dagbag import DagBag

        self.breaker = Breaker()
        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            raise SystemExit(f"error: the DAG does not load: {bag.import_errors}")
        self.dag = bag.dags["pricegroups_daily"]

    def warm_up(self) -> None:
        """Pay Airflow's first-task costs now (~15 s: the in-process execution API, the task runner):
        a dry run of the DAG's first date (before any demo day) in which only `start` runs, which writes
        nothing."""
        from pricegroups.pipeline import DEFAULT_PARAMS

        self.dag.test(
            run_after=WARM_UP_DATE,
            logical_date=WARM_UP_DATE,
            run_conf={**DEFAULT_PARAMS, "dry_run": True},
            mark_success_pattern=r"(?!start$).*",
        )

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        from pricegroups.pipeline import DEFAULT_PARAMS

        started = time.perf_counter()
        result_path = Path(command["result"])
        kill, fail = command.get("kill"), command.get("fail")
        self.breaker.arm(kill or fail, "kill" if kill else "fail", result_path.with_suffix(".broke"))
        logical_date = datetime.fromisoformat(command["date"])
        # Airflow names a manual run after its run_after (default: now, a new run id every call). The
        # campaign passes the logical date (a backfill: a later time that day), so a re-run of a run is
        # the same run id; dag.test replaces Airflow's own record of it.
        run_after = datetime.fromisoformat(command.get("run_after") or command["date"])
        conf = {**DEFAULT_PARAMS, **(command.get("conf") or {})}  # every param, every time
        print(f"=== {command.get('label', '')}: {logical_date.isoformat()} {json.dumps(conf)}", flush=True)
        try:
            dag_run = self.dag.test(run_after=run_after, logical_date=logical_date, run_conf=conf)
        finally:
            self.breaker.arm(None, "", None)
        states: dict[str, list[str]] = {}
        seconds: dict[str, float] = {}
        for ti in dag_run.get_task_instances():
            states.setdefault(ti.task_id, []).append(str(getattr(ti.state, "value", ti.state)))
            if ti.start_date and ti.end_date:
                seconds[ti.task_id] = (
                    seconds.get(ti.task_id, 0.0) + (ti.end_date - ti.start_date).total_seconds()
                )
        result = {
            "run_id": dag_run.run_id,
            "state": str(getattr(dag_run.state, "value", dag_run.state)),
            "tasks": {task: sorted(s) for task, s in sorted(states.items())},
            "task_seconds": {task: round(t, 1) for task, t in sorted(seconds.items(), key=lambda kv: -kv[1])},
            "wall_s": round(time.perf_counter() - started, 1),
        }
        partial = result_path.with_suffix(".tmp")
        partial.write_text(json.dumps(result, indent=1))
        partial.replace(result_path)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="AIRFLOW_HOME (SQLite metadata, migrated)")
    parser.add_argument("--serve", action="store_true", help="run the JSON commands read from stdin")
    parser.add_argument("--ready", type=Path, help="--serve: this file is written once warmed up")
    parser.add_argument("--date", help="logical date, ISO 8601 with a time zone")
    parser.add_argument("--conf", default="{}", help="the run's params as JSON (defaults filled in)")
    parser.add_argument("--result", type=Path)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--kill", help="TASK[:CHAIN]@POINT: SIGKILL this process there")
    group.add_argument("--fail", help="TASK[:CHAIN]@POINT: the task fails hard there")
    args = parser.parse_args()
    if not args.serve and not (args.date and args.result):
        parser.error("give --serve, or --date and --result")
    for spec in (args.kill, args.fail):
        if spec:
            parse_spec(spec)

    prepare_environment(args.home.resolve())
    sys.path.insert(0, str(ROOT / "plugins"))
    logging.basicConfig(level=logging.WARNING)
    runner = Runner()
    if not args.serve:
        runner.run(
            {
                "date": args.date,
                "conf": json.loads(args.conf),
                "result": str(args.result),
                "kill": args.kill,
                "fail": args.fail,
            }
        )
        return 0
    runner.warm_up()
    print("=== ready", flush=True)
    if args.ready:
        args.ready.write_text("ready\n")
    for line in sys.stdin:
        if line.strip():
            runner.run(json.loads(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
