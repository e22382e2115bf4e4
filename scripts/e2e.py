"""`make e2e`: the DAG under real Airflow components, driven as a user drives it.

For each executor (LocalExecutor, then CeleryExecutor with two workers) it
starts the API server, the scheduler and the DAG processor (and the workers)
as separate processes, with a PostgreSQL metadata database, then: unpauses
the DAG, triggers three simulated days through the REST API with params, runs
a store-set backfill with `airflow backfill create`, triggers bad params, and
checks the pricegroups database against the demo's truth. Once, with the local
executor, a headless Chromium triggers a run from the UI's form, then opens the
pricegroups plugin's Price groups page and a run's Price groups tab and checks
them against the database (scripts/e2e_ui.py). It ends with one RESULT line
(docs/e2e.md).

Needs PostgreSQL on 127.0.0.1:5432 (E2E_POSTGRES) for Airflow's metadata and,
for Celery, Redis on 127.0.0.1:6379 (E2E_REDIS); an executor whose service is
absent is skipped with a message, never reported as passed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "e2e"
REPORTS = ROOT / "reports" / "e2e"
POSTGRES = os.environ.get("E2E_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("E2E_REDIS", "redis://127.0.0.1:6379/7")
DAG_ID = "pricegroups_daily"
PY = sys.executable
DAYS = 3
# day 0 of the demo site: DAYS days before today, so today's scheduled run (created on unpause) is day DAYS
EPOCH = datetime.now(timezone.utc).date() - timedelta(days=DAYS)
STORE_SET = ["FM001", "valueway/VW002"]
STORE_SET_QUALIFIED = ["freshmart/FM001", "valueway/VW002"]


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def fresh_database(name: str) -> str:
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(POSTGRES)
    return parts._replace(path="/" + name).geturl()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    """One Airflow deployment of the DAG: its processes, its REST API and its pricegroups database."""

    def __init__(self, executor: str):
        self.executor = executor
        self.home = VAR / executor
        self.api_port, self.site_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.password = secrets.token_urlsafe(10)
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.token = ""
        self.conninfo = ""

    # ---- processes ---------------------------------------------------------------------------

    def environment(self, metadata: str) -> dict[str, str]:
        sys.path.insert(0, str(ROOT / "plugins"))
        from pricegroups import db

        env = dict(os.environ)
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": {"local": "LocalExecutor", "celery": "CeleryExecutor"}[self.executor],
            "AIRFLOW__CORE__PARALLELISM": str(max(4, 2 * (os.cpu_count() or 2))),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace("postgresql://", "postgresql+psycopg2://", 1),
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API__SECRET_KEY": "e2e-" + self.executor,
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-" + self.executor,
            "AIRFLOW__CELERY__BROKER_URL": REDIS,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            # one directory every worker sees: a backfill on another worker replays what was fetched
            "PRICEGROUPS_SNAPSHOT_ROOT": (self.home / "snapshots").as_uri(),
            "AIRFLOW_CONN_PRICEGROUPS_DB": db.airflow_connection_json(self.conninfo),
            "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", ""),
        })
        return env

    def start(self, name: str, *args: str) -> None:
        out = open(self.home / f"{name}.log", "wb")
        process = subprocess.Popen([PY, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append((name, process))

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 30
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in 30 s: killed")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def up(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        (self.home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        metadata = fresh_database(f"pricegroups_e2e_airflow_{self.executor}")
        self.conninfo = fresh_database(f"pricegroups_e2e_{self.executor}")
        self.env = self.environment(metadata)
        self.start("demo-site", "-m", "pricegroups", "demo-site", "--port", str(self.site_port),
                   "--epoch", EPOCH.isoformat())
        self.wait_for(f"http://127.0.0.1:{self.site_port}/", "the demo site", 60)
        base = f"http://127.0.0.1:{self.site_port}"
        self.run("-m", "pricegroups", "demo-chains", "--dated", "--base-url", base, "--database-url", self.conninfo)
        self.run("-m", "airflow", "db", "migrate")
        self.run("-m", "airflow", "pools", "set", "pricegroups_scrape", "4", "store scrapes")
        self.start("api-server", "-m", "airflow", "api-server", "--port", str(self.api_port))
        self.start("scheduler", "-m", "airflow", "scheduler")
        self.start("dag-processor", "-m", "airflow", "dag-processor")
        if self.executor == "celery":
            for worker in ("w1", "w2"):
                self.start(f"worker-{worker}", "-m", "airflow", "celery", "worker", "-H", f"{worker}@%h",
                           "-c", "2", "--skip-serve-logs")
        self.wait_for(f"{self.api}/api/v2/monitor/health", "the API server", 180)
        self.token = self.post("/auth/token", {"username": "admin", "password": self.password}, auth=False)[
            "access_token"]
        deadline = time.time() + 180
        while requests.get(f"{self.api}/api/v2/dags/{DAG_ID}", headers=self.headers, timeout=10).status_code != 200:
            if time.time() > deadline:
                raise AssertionError("the DAG processor did not register the DAG within 180 s")
            time.sleep(2)

    def run(self, *args: str) -> str:
        done = subprocess.run([PY, *args], env=self.env, capture_output=True, text=True)
        if done.returncode:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    @staticmethod
    def wait_for(url: str, what: str, timeout_s: float) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                if requests.get(url, timeout=5).status_code < 500:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise AssertionError(f"{what} did not answer at {url} within {timeout_s:.0f} s")

    # ---- REST API ----------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: dict, auth: bool = True, expect: int | None = None) -> Any:
        response = requests.post(f"{self.api}{path}", json=body, headers=self.headers if auth else {}, timeout=30)
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, response.text[:500])
            return response.json() if response.content else None
        assert response.status_code < 300, (path, response.status_code, response.text[:500])
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.api}{path}", params=params, headers=self.headers, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.json()

    def trigger(self, run_id: str, when: datetime | None, conf: dict, expect: int | None = None) -> Any:
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf,
                                "logical_date": when.isoformat() if when else None}
        if when:
            body["run_after"] = when.isoformat()  # runs queue in run_after order, before today's scheduled run
        return self.post(f"/api/v2/dags/{DAG_ID}/dagRuns", body, expect=expect)

    def runs(self, **filters: Any) -> list[dict]:
        return self.get(f"/api/v2/dags/{DAG_ID}/dagRuns", limit=100, order_by="run_after", **filters)["dag_runs"]

    def check_alive(self) -> None:
        """A component that died (a bad executor setting, a crash) fails the check at once, with its log."""
        for name, process in self.processes:
            if process.poll() is not None:
                tail = (self.home / f"{name}.log").read_text(errors="replace")[-1500:]
                raise AssertionError(f"{name} exited with {process.returncode}:\n{tail}")

    def wait_runs(self, run_ids: list[str], timeout_s: float) -> dict[str, dict]:
        deadline = time.time() + timeout_s
        while True:
            self.check_alive()
            runs = {r["dag_run_id"]: r for r in self.runs() if r["dag_run_id"] in run_ids}
            if len(runs) == len(run_ids) and all(r["state"] in ("success", "failed") for r in runs.values()):
                return runs
            if time.time() > deadline:
                states = {k: v["state"] for k, v in runs.items()}
                raise AssertionError(f"runs not finished after {timeout_s:.0f} s: {states}")
            time.sleep(3)

    def task_instance(self, run_id: str, task_id: str) -> dict:
        return self.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}")


def duration(run: dict) -> float:
    start = datetime.fromisoformat(run["start_date"])
    end = datetime.fromisoformat(run["end_date"])
    return (end - start).total_seconds()


def demo_day(day: int) -> datetime:
    return datetime.combine(EPOCH + timedelta(days=day), dtime(6), tzinfo=timezone.utc)


def prices_snapshot(conninfo: str) -> dict[tuple[int, int], datetime]:
    with psycopg.connect(conninfo) as conn:
        return {(p, s): at for p, s, at in conn.execute("SELECT product_id, store_id, scraped_at FROM prices")}


def groups_snapshot(conninfo: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT store_id, group_id FROM stores ORDER BY store_id").fetchall()


def check_days(d: Deployment, outcome: dict) -> None:
    """Unpause, three simulated days through the REST API (with params), and today's scheduled run."""
    confs = [{"full_scrape": True}, {"window_hours": 72}, {"chains": [], "stores": []}]
    ids = [f"e2e_day{day}" for day in range(DAYS)]
    for day, (run_id, conf) in enumerate(zip(ids, confs)):
        d.trigger(run_id, demo_day(day), conf)
    requests.patch(f"{d.api}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, headers=d.headers,
                   timeout=30).raise_for_status()
    log("unpaused; three simulated days queued")
    runs = d.wait_runs(ids, 1800)
    for run_id in ids:
        log(f"{run_id}: {runs[run_id]['state']} in {duration(runs[run_id]):.0f} s")
    outcome["runs"] += [runs[i]["state"] for i in ids]
    outcome["anchors_only_s"] += [duration(runs[i]) for i in ids[1:]]
    scheduled = [r for r in d.runs(run_type="scheduled")]
    if scheduled:
        done = d.wait_runs([scheduled[0]["dag_run_id"]], 900)[scheduled[0]["dag_run_id"]]
        log(f"scheduled run {done['dag_run_id']}: {done['state']} in {duration(done):.0f} s")
        outcome["runs"].append(done["state"])


def check_truth(d: Deployment, outcome: dict) -> None:
    """Groups and served prices after the newest daily run, against the scenario's truth of its day."""
    from pricegroups.demo.generate import default_scenario
    from pricegroups.demo.report import price_accuracy, adjusted_rand_index

    scenario = default_scenario().starting(EPOCH)
    with psycopg.connect(d.conninfo) as conn:
        newest = conn.execute("SELECT max(logical_date) FROM runs WHERE NOT backfill").fetchone()[0]
        day = (newest.date() - scenario.start_date).days
        placement = conn.execute(
            "SELECT c.code, s.code, s.group_id FROM stores s JOIN chains c USING (chain_id) WHERE s.active").fetchall()
        truth = {(c, code): f"{c}:{zone}" for c in scenario.chains for zone, codes in
                 scenario.true_zones(c, day).items() for code in codes}
        found = {(c, s): g for c, s, g in placement if (c, s) in truth}
        ari = adjusted_rand_index(truth, found)
        accuracy = price_accuracy(conn, scenario, day)
    share = accuracy.wrong_inferred / accuracy.inferred if accuracy.inferred else 0.0
    log(f"truth of day {day}: ARI {ari:.3f}, wrong inferred {accuracy.wrong_inferred}/{accuracy.inferred}")
    outcome["truth"] = outcome["truth"] and ari >= 0.95 and share <= 0.01


def check_backfill(d: Deployment, outcome: dict) -> None:
    """A store-set backfill of two dates: one run at a time, only those stores, nothing older, groups alone."""
    before_prices, before_groups = prices_snapshot(d.conninfo), groups_snapshot(d.conninfo)
    d.run("-m", "airflow", "backfill", "create", "--dag-id", DAG_ID, "--from-date", demo_day(1).date().isoformat(),
          "--to-date", demo_day(2).date().isoformat(), "--dag-run-conf", json.dumps({"stores": STORE_SET}),
          "--max-active-runs", "1")
    deadline = time.time() + 900
    while True:
        runs = d.runs(run_type="backfill")
        if len(runs) >= 2 and all(r["state"] in ("success", "failed") for r in runs):
            break
        assert time.time() < deadline, f"backfill not finished: {[(r['dag_run_id'], r['state']) for r in runs]}"
        time.sleep(3)
    spans = sorted((r["start_date"], r["end_date"]) for r in runs)
    one_at_a_time = all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    after_prices = prices_snapshot(d.conninfo)
    older = [k for k, at in after_prices.items() if k in before_prices and at < before_prices[k]]
    with psycopg.connect(d.conninfo) as conn:
        scraped = {code for (code,) in conn.execute(
            """SELECT c.code || '/' || s.code FROM scrape_log l JOIN stores s USING (store_id)
               JOIN chains c ON c.chain_id = s.chain_id WHERE l.run_id = ANY(%s)""",
            ([r["dag_run_id"] for r in runs],))}
        backfill_flags = {b for (b,) in conn.execute(
            "SELECT backfill FROM runs WHERE run_id = ANY(%s)", ([r["dag_run_id"] for r in runs],))}
        anchors = {code for (code,) in conn.execute(  # a store set is scraped with its anchors
            """SELECT c.code || '/' || a.code FROM stores s JOIN chains c USING (chain_id)
               JOIN store_groups g ON g.group_id = s.group_id JOIN stores a ON a.store_id = g.anchor_store_id
               WHERE c.code || '/' || s.code = ANY(%s)""", (list(STORE_SET_QUALIFIED),))}
    wanted = set(STORE_SET_QUALIFIED)
    ok = (all(r["state"] == "success" for r in runs) and one_at_a_time and not older and wanted <= scraped <= wanted | anchors
          and backfill_flags == {True} and groups_snapshot(d.conninfo) == before_groups
          and all(r["conf"].get("stores") == STORE_SET for r in runs))
    log(f"backfill: {len(runs)} runs {[r['state'] for r in runs]}, one at a time {one_at_a_time}, "
        f"stores {sorted(scraped)}, prices made older {len(older)}, groups unchanged "
        f"{groups_snapshot(d.conninfo) == before_groups}")
    outcome["runs"] += [r["state"] for r in runs]
    outcome["backfill"] = outcome["backfill"] and ok


def check_bad_params(d: Deployment, outcome: dict) -> None:
    """Schema errors are refused before a run is queued; the rest fail at `start`, once, fast, clearly."""
    d.trigger("e2e_bad_schema", None, {"stores": ["not a code"]}, expect=400)
    d.trigger("e2e_bad_window", None, {"window_hours": 0}, expect=400)
    ids = ["e2e_unknown_store", "e2e_unknown_param"]
    d.trigger(ids[0], None, {"stores": ["NOPE999"]})
    d.trigger(ids[1], None, {"bogus": True})
    runs = d.wait_runs(ids, 600)
    ok = True
    for run_id in ids:
        start = d.task_instance(run_id, "start")
        took = duration(runs[run_id])
        log(f"{run_id}: run {runs[run_id]['state']}, start {start['state']} after try {start['try_number']}, "
            f"{took:.0f} s")
        ok = ok and runs[run_id]["state"] == "failed" and start["state"] == "failed" and start["try_number"] == 1
    outcome["bad_params"] = outcome["bad_params"] and ok


def check_ui(d: Deployment, outcome: dict) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from e2e_ui import ui_trigger_check

        run_id = ui_trigger_check(d.api, "admin", d.password, ["FM001"], REPORTS / d.executor)
    except Exception as exc:  # a browser problem is a failed UI check, reported, not a crash
        log(f"UI check FAILED: {type(exc).__name__}: {exc}")
        return
    outcome["ui"] = "pass"
    outcome["runs"].append("success")
    log(f"UI: triggered {run_id} from the form; it succeeded")


def check_ui_groups(d: Deployment, outcome: dict) -> None:
    """The pricegroups plugin in the browser: Price groups page and the first day's run tab, against the database."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from e2e_ui import ui_groups_check

        seen = ui_groups_check(d.api, "admin", d.password, "e2e_day0", d.conninfo, REPORTS / d.executor)
    except Exception as exc:  # a browser problem is a failed UI check, reported, not a crash
        log(f"UI groups view FAILED: {type(exc).__name__}: {exc}")
        return
    outcome["ui_groups"] = "pass"
    log(f"UI: Price groups page and run view match the database ({seen}); screenshots in {REPORTS / d.executor}")


def baseline_day_s() -> float:
    """The same anchors-only day under dag.test() (scripts/demo.py, day 1), in this run."""
    env = dict(os.environ, DATABASE_URL=POSTGRES)
    done = subprocess.run([PY, str(ROOT / "scripts" / "demo.py"), "--days", "2"], env=env, capture_output=True,
                          text=True)
    rows = [line.split() for line in done.stdout.splitlines() if re.match(r"^\s+1\s+\d", line)]
    if done.returncode or not rows:
        raise AssertionError(f"the dag.test() baseline failed: {done.stderr[-2000:]}")
    return float(rows[0][-1])


@contextmanager
def deployment(executor: str) -> Iterator[Deployment]:
    d = Deployment(executor)
    try:
        d.up()
        yield d
    finally:
        d.stop()


def main() -> int:
    sys.path.insert(0, str(ROOT / "plugins"))
    if not reachable(POSTGRES, 5432):
        print(f"e2e needs PostgreSQL for Airflow's metadata at {POSTGRES} (E2E_POSTGRES): not reachable. "
              "Start it (pg_ctlcluster 15 main start) and run make e2e again.", file=sys.stderr)
        return 2
    executors = ["local"]
    if os.environ.get("E2E_EXECUTORS"):  # e.g. E2E_EXECUTORS=celery to try one deployment
        executors = os.environ["E2E_EXECUTORS"].split(",")
    elif reachable(REDIS, 6379):
        executors.append("celery")
    else:
        log(f"Redis not reachable at {REDIS} (E2E_REDIS): the CeleryExecutor deployment is SKIPPED")
    outcome: dict[str, Any] = {"runs": [], "anchors_only_s": [], "truth": True, "backfill": True,
                               "bad_params": True, "ui": "fail", "ui_groups": "fail"}
    failures = 0
    for executor in executors:
        log(f"== {executor} executor")
        try:
            with deployment(executor) as d:
                check_days(d, outcome)
                check_truth(d, outcome)
                check_backfill(d, outcome)
                check_bad_params(d, outcome)
                if executor == "local":
                    check_ui(d, outcome)
                    check_ui_groups(d, outcome)
        except AssertionError as exc:
            failures += 1
            log(f"{executor}: FAILED: {exc}")
    log("baseline: the same days under dag.test()")
    base = baseline_day_s()
    ratio = statistics.median(outcome["anchors_only_s"]) / base if outcome["anchors_only_s"] else float("nan")
    runs_ok = sum(1 for s in outcome["runs"] if s == "success")
    unexpected = sum(1 for s in outcome["runs"] if s != "success") + failures
    log(f"anchors-only day: {statistics.median(outcome['anchors_only_s'] or [float('nan')]):.1f} s under the "
        f"scheduler, {base:.1f} s under dag.test()")
    print(f"RESULT executors={','.join(executors)} runs_ok={runs_ok} runs_failed_unexpectedly={unexpected} "
          f"backfill_store_set={'pass' if outcome['backfill'] and not failures else 'fail'} "
          f"bad_params_fail_fast={'pass' if outcome['bad_params'] and not failures else 'fail'} "
          f"ui_trigger={outcome['ui']} ui_groups_view={outcome['ui_groups']} "
          f"truth={'pass' if outcome['truth'] else 'fail'} day_wall_ratio={ratio:.2f}")
    ok = not unexpected and outcome["ui"] == "pass" and outcome["ui_groups"] == "pass" and outcome["truth"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
