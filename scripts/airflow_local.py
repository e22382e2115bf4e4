"""`make airflow`: Airflow locally with this DAG, the demo site and the embedded PostgreSQL.

Starts the demo site (port 8765), registers its chains in the pricegroups
database, then runs `airflow standalone` (API server/UI, scheduler, DAG
processor, triggerer) with a local AIRFLOW_HOME. Open http://localhost:8080,
log in with the user and password `airflow standalone` prints, and trigger
pricegroups_daily with the form. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = ROOT / "var" / "airflow-local"
DEMO_PORT = int(os.environ.get("DEMO_PORT", "8765"))


def main() -> int:
    sys.path.insert(0, str(ROOT / "plugins"))
    from pricegroups import db

    conninfo = db.database_url()
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "PRICEGROUPS_SNAPSHOT_ROOT": str(ROOT / "var" / "snapshots"),
        # standalone starts its components with the `airflow` command: use this venv's
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_CONN_PRICEGROUPS_DB": db.airflow_connection_json(conninfo),
    })
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{DEMO_PORT}"
    site = subprocess.Popen([sys.executable, "-m", "pricegroups", "demo-site", "--port", str(DEMO_PORT)], env=env)
    try:
        time.sleep(2)
        subprocess.run([sys.executable, "-m", "pricegroups", "demo-chains", "--base-url", base_url], env=env, check=True)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "airflow", "pools", "set", "pricegroups_scrape", "4", "store scrapes"],
                       env=env, check=True, capture_output=True)
        print(f"demo site {base_url} (POST {base_url}/_admin/day to change the simulated day)")
        print("starting airflow standalone: http://localhost:8080", flush=True)
        return subprocess.call([sys.executable, "-m", "airflow", "standalone"], env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        site.terminate()
        site.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
