"""`make airflow`: Airflow locally with this DAG, the demo site and the embedded PostgreSQL.

Starts the demo site (port 8765), registers its chains in the pricegroups
database with dated URLs (each run sees the simulated day of its logical date:
day 0 is the demo epoch, the scenario's start date, 2026-03-02 for the built-in
one), then runs `airflow standalone` (API server/UI, scheduler, DAG processor,
triggerer) with a local AIRFLOW_HOME, two LocalExecutor workers per core
(at least 4). Open http://localhost:8080, log in as `admin`
with the password printed at start, and trigger pricegroups_daily with the
form. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = ROOT / "var" / "airflow-local"
DEMO_PORT = int(os.environ.get("DEMO_PORT", "8765"))
API_PORT = int(os.environ.get("AIRFLOW_PORT", "8080"))


def workers() -> int:
    """LocalExecutor workers (Airflow's parallelism): two per core, at least 4 (standalone's default is 32).

    Tasks mostly wait on HTTP and PostgreSQL, so two per core keep the scrape batches overlapping
    without the memory of 32 idle worker processes.
    """
    return max(4, 2 * (os.cpu_count() or 2))


def admin_password(home: Path) -> str:
    """The `admin` user's password, kept in AIRFLOW_HOME so it survives restarts."""
    path = home / "passwords.json"
    if path.exists():
        return json.loads(path.read_text())["admin"]
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({"admin": password}))
    return password


def airflow_env(home: Path, conninfo: str, snapshots: Path) -> dict[str, str]:
    from pricegroups import db

    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__PARALLELISM": str(workers()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{API_PORT}/execution/",  # tasks call it
        "PRICEGROUPS_SNAPSHOT_ROOT": str(snapshots),
        # standalone starts its components with the `airflow` command: use this venv's
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_CONN_PRICEGROUPS_DB": db.airflow_connection_json(conninfo),
    })
    return env


def stop(process: subprocess.Popen, name: str, grace_s: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left after `grace_s`."""
    if process.poll() is not None:
        return
    print(f"stopping {name} ...", flush=True)
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    sys.path.insert(0, str(ROOT / "plugins"))
    from pricegroups import db

    conninfo = db.database_url()
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    password = admin_password(AIRFLOW_HOME)
    env = airflow_env(AIRFLOW_HOME, conninfo, ROOT / "var" / "snapshots")
    base_url = f"http://127.0.0.1:{DEMO_PORT}"
    started: list[tuple[subprocess.Popen, str]] = []
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        site = subprocess.Popen([sys.executable, "-m", "pricegroups", "demo-site", "--port", str(DEMO_PORT)],
                                env=env, start_new_session=True)
        started.append((site, "the demo site"))
        time.sleep(2)
        subprocess.run([sys.executable, "-m", "pricegroups", "demo-chains", "--dated", "--base-url", base_url],
                       env=env, check=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "airflow", "pools", "set", "pricegroups_scrape", "4", "store scrapes"],
                       env=env, check=True, capture_output=True)
        print(f"demo site {base_url}: runs see the simulated day of their logical date (day 0 = 2026-03-02)")
        print(f"starting Airflow ({workers()} LocalExecutor workers): http://localhost:{API_PORT} "
              f"user admin, password {password}; Ctrl-C stops everything", flush=True)
        airflow = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, start_new_session=True)
        started.append((airflow, "Airflow"))
        return airflow.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for process, name in reversed(started):
            stop(process, name)


if __name__ == "__main__":
    sys.exit(main())
