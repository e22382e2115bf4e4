"""docker-compose.yaml and the Dockerfile agree with the code (no Docker engine runs here to try them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pricegroups.cli import build_parser
from pricegroups.scrape.snapshots import parse_snapshot_root

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_compose_has_the_airflow_services_the_databases_and_the_demo_site():
    services = _compose()["services"]
    assert {
        "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
        "airflow-init", "redis", "airflow-metadata-db", "pricegroups-db", "demo-site",
    } <= set(services)


def test_every_named_volume_and_dependency_is_declared():
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in declared, (name, source)
            else:
                assert (ROOT / source).exists(), (name, source)
        for dependency in service.get("depends_on", {}) or {}:
            assert dependency in compose["services"], (name, dependency)


def test_the_pricegroups_connection_matches_the_dag_and_points_at_the_pricegroups_database():
    dag_source = (ROOT / "dags" / "pricegroups_daily.py").read_text()
    conn_id = re.search(r'CONN_ID = "([a-z_]+)"', dag_source).group(1)
    env = _compose()["services"]["airflow-scheduler"]["environment"]
    url = env[f"AIRFLOW_CONN_{conn_id.upper()}"]
    db = _compose()["services"]["pricegroups-db"]["environment"]
    assert url == f"postgresql://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@pricegroups-db:5432/{db['POSTGRES_DB']}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["PRICEGROUPS_SQL_DIR"] == "/opt/airflow/sql"
    assert any(v.endswith(":/opt/airflow/sql") for v in _compose()["services"]["airflow-worker"]["volumes"])


def test_image_follows_the_pinned_airflow_version():
    pinned = re.search(r"^apache-airflow==([\d.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{pinned}" in (ROOT / "Dockerfile").read_text()
    assert _compose()["x-airflow-common"]["image"].endswith(pinned)


def test_the_demo_site_command_is_a_valid_cli_invocation():
    command = _compose()["services"]["demo-site"]["command"]
    assert command[:3] == ["python", "-m", "pricegroups"]
    args = build_parser().parse_args(command[3:])
    assert args.command == "demo-site" and args.port == 8000


def test_every_airflow_service_shares_one_snapshot_root_on_one_volume():
    compose = _compose()
    airflow = {name: s for name, s in compose["services"].items()
               if name.startswith("airflow-") and name != "airflow-metadata-db"}
    roots = {name: s["environment"]["PRICEGROUPS_SNAPSHOT_ROOT"] for name, s in airflow.items()}
    assert len(set(roots.values())) == 1, roots
    root = parse_snapshot_root(next(iter(roots.values())))
    assert root.is_directory  # the compose file shares a volume; an s3:// root would need no mount
    for name, service in airflow.items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert mounts.get(root.path) == "snapshots", (name, mounts)
    assert "snapshots" in compose["volumes"]
