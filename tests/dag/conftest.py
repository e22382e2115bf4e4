"""Airflow for the DAG tier: a throwaway AIRFLOW_HOME with SQLite metadata, one per pytest-xdist worker.

The environment must be set before Airflow is first imported, so it is set at
import time of this conftest, which pytest loads before the tests of this tier.
Each worker (PYTEST_XDIST_WORKER: gw0, gw1, ...; "main" without xdist) has a
home of its own, since SQLite metadata is not shared between writers; its
database is migrated once and then reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = ROOT / "var" / f"airflow-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated (once; `airflow db migrate` is idempotent)."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    marker = AIRFLOW_HOME / ".migrated"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            capture_output=True,
        )
        marker.touch()
    return AIRFLOW_HOME
