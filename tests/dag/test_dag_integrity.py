"""The DAG file: loads cleanly, does no work at parse time, has the intended shape and params."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["pricegroups_daily"]


def test_parsing_touches_no_database_and_no_network(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise AssertionError("the DAG file opened a connection at parse time")

    monkeypatch.setattr(psycopg, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@192.0.2.1/none")
    monkeypatch.delenv("AIRFLOW_CONN_PRICEGROUPS_DB", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert "pricegroups_daily" in bag.dags


def test_schedule_is_daily_without_catchup_and_one_run_at_a_time(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.timetable.expression in ("@daily", "0 0 * * *")


def test_main_flow_is_wired_in_order(dag):
    def downstream(task_id):
        return dag.get_task(task_id).downstream_task_ids

    assert downstream("start") >= {"plan"}
    assert "scrape" in downstream("plan")
    assert "resolve" in downstream("scrape")
    assert downstream("resolve") == {"reconcile"}
    assert downstream("reconcile") == {"enrich"}
    assert downstream("enrich") == {"upsert"}
    assert "post_process" in downstream("upsert")
    assert "find_stale_anchors" in downstream("post_process")
    assert downstream("stale_anchor_branch") == {"rescrape_anchors", "anchors_current"}
    assert "health_check_batches" in downstream("anchors_current")
    assert "health_check_batches" in downstream("upsert_rescraped")
    assert "candidate_pairs" in downstream("health_check")
    assert "merge_groups" in downstream("compare_pairs")


def test_fan_out_tasks_are_mapped_and_labelled(dag):
    for task_id in ("scrape", "rescrape_anchors", "health_check", "compare_pairs"):
        task = dag.get_task(task_id)
        assert type(task).__name__.endswith("MappedOperator"), task_id
        assert task.map_index_template == "{{ label }}"


def test_scrapes_use_the_pool_and_retry_with_backoff(dag):
    for task_id in ("scrape", "rescrape_anchors"):
        task = dag.get_task(task_id)
        assert task.partial_kwargs["pool"] == "pricegroups_scrape"
        assert task.partial_kwargs["retries"] >= 2
        assert task.partial_kwargs["retry_exponential_backoff"]


def test_default_params_validate_and_have_a_schema_for_the_form(dag):
    params = dag.params
    resolved = params.validate()
    assert resolved == {"stores": [], "chains": [], "full_scrape": False, "window_hours": None, "dry_run": False}
    schema = {k: params.get_param(k).schema for k in params}
    assert schema["stores"]["type"] == "array" and schema["window_hours"]["type"] == ["null", "integer"]


@pytest.mark.parametrize("name, value", [("window_hours", "soon"), ("window_hours", 0), ("stores", "a,b"), ("dry_run", "yes")])
def test_invalid_params_are_refused(dag, name, value):
    import copy

    params = copy.deepcopy(dag.params)
    with pytest.raises(Exception, match="(?i)invalid|valid|not of type|less than|minimum"):
        params[name] = value
        params.validate()


def test_snapshot_credentials_come_from_the_connection_named_in_the_environment(monkeypatch):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("pricegroups_daily_file", ROOT / "dags" / "pricegroups_daily.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("PRICEGROUPS_SNAPSHOT_CONN_ID", raising=False)
    assert module._snapshot_options() is None, "a shared directory needs no credentials"
    monkeypatch.setenv("PRICEGROUPS_SNAPSHOT_CONN_ID", "snapshots_s3")
    monkeypatch.setenv("AIRFLOW_CONN_SNAPSHOTS_S3", json.dumps(
        {"conn_type": "aws", "login": "AKIAEXAMPLE", "password": "s3cret", "extra": {"region_name": "eu-west-1"}}))
    options = module._snapshot_options()
    assert options["key"] == "AKIAEXAMPLE" and options["secret"] == "s3cret"
