"""Real Airflow runs of pricegroups_daily with dag.test(): what only Airflow can show.

Branches, trigger rules, mapped tasks and their labels, task and run states
of failures, params reaching the run: each test runs the DAG once, with the
demo site on loopback, on a clone of a state of the compact scenario's story
(tests/story.py, played once per session through the pipeline harness). The
rules those runs decide (groups, prices, plans) are checked on the story
itself, in tests/integration/test_daily_story.py. Failures that need a bug are
made by patching `pricegroups.pipeline` in this process, where dag.test() runs
the tasks.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from pricegroups import db
from pricegroups.demo.chains import register_demo_chains
from pricegroups.demo.model import Event
from pricegroups.demo.server import DemoSite
from pricegroups.invariants import price_times
from pricegroups.pipeline import DEFAULT_PARAMS
from tests.story import FAST_RETRIES, Story, invariant_failures, logical_date, snapshot

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
MAIN_STEPS = ("resolve", "reconcile", "enrich", "upsert", "post_process")


@pytest.fixture(scope="module")
def dag(airflow_db: Path) -> Any:
    """The DAG as parsed with scrape retries off (a chain that is down fails at once, no 140 s of backoff)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("pricegroups_scrape", 4, "scrapes", include_deferred=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRICEGROUPS_SCRAPE_RETRIES", "0")
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["pricegroups_daily"]


class DagRuns:
    """Runs the DAG with dag.test() on a clone of a story chapter, with the site's events as given."""

    def __init__(self, dag: Any, story: Story, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.dag, self.story, self.site = dag, story, story.site
        self.monkeypatch, self.tmp_path = monkeypatch, tmp_path
        self.conninfo = ""

    @contextmanager
    def on(self, chapter: str) -> Iterator["DagRuns"]:
        with self.story.clone(chapter) as (url, facts):
            self.conninfo, self.facts = url, facts
            with psycopg.connect(url) as conn:
                register_demo_chains(conn, self.site.base_url)
                conn.commit()
            self.monkeypatch.setenv("AIRFLOW_CONN_PRICEGROUPS_DB", db.airflow_connection_json(url))
            for name, value in FAST_RETRIES.items():
                self.monkeypatch.setenv(name, value)
            self.monkeypatch.setenv("PRICEGROUPS_SNAPSHOT_ROOT", str(self.tmp_path / "snapshots"))
            yield self

    def run(self, day: int, conf: dict[str, Any] | None = None, events: tuple[Event, ...] = ()) -> dict[str, Any]:
        site: DemoSite = self.site
        site.clear_events()
        site.add_event(*events)
        site.set_day(day)
        with psycopg.connect(self.conninfo) as conn:
            before, before_times = snapshot(conn), price_times(conn)
        try:
            # every param given each time: in-process dag.test() keeps params from the previous call
            dag_run = self.dag.test(logical_date=logical_date(self.story.scenario, day),
                                    run_conf={**DEFAULT_PARAMS, **(conf or {})})
        finally:
            site.clear_events()
        states: dict[str, set[str]] = {}
        labels: dict[str, list[str]] = {}
        for ti in dag_run.get_task_instances():
            states.setdefault(ti.task_id, set()).add(str(getattr(ti.state, "value", ti.state)))
            if ti.map_index >= 0 and ti.rendered_map_index:
                labels.setdefault(ti.task_id, []).append(ti.rendered_map_index)
        with psycopg.connect(self.conninfo) as conn:
            assert invariant_failures(conn, before_times) == {}, "DESIGN.md §6 holds after every run"
            after = snapshot(conn)
            row = conn.execute("SELECT summary, backfill FROM runs WHERE run_id = %s", (dag_run.run_id,)).fetchone()
            scraped = {r[0] for r in conn.execute(
                "SELECT c.code || '/' || s.code FROM scrape_log l JOIN stores s USING (store_id)"
                " JOIN chains c ON c.chain_id = s.chain_id WHERE l.run_id = %s", (dag_run.run_id,))}
            events_ = conn.execute("SELECT kind FROM group_events WHERE run_id = %s AND kind <> 'verified'",
                                   (dag_run.run_id,)).fetchall()
        return {"state": str(getattr(dag_run.state, "value", dag_run.state)), "states": states, "labels": labels,
                "before": before, "after": after, "summary": row[0] if row else None,
                "backfill": row[1] if row else None, "scraped": scraped, "events": [k for (k,) in events_]}


@pytest.fixture
def dag_runs(dag: Any, story: Story, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> DagRuns:
    return DagRuns(dag, story, monkeypatch, tmp_path)


def _chains(codes: set[str]) -> set[str]:
    return {code.split("/")[0] for code in codes}


def test_a_normal_day_runs_every_task_but_the_rescrape_branch_and_labels_its_mapped_tasks(dag_runs):
    with dag_runs.on("day0") as runs:
        day1 = runs.run(1)
    assert day1["state"] == "success"
    skipped = {"rescrape_anchors", "upsert_rescraped"}
    assert {task: s for task, s in day1["states"].items() if task in skipped} == dict.fromkeys(skipped, {"skipped"})
    assert {task: s for task, s in day1["states"].items() if task not in skipped} == dict.fromkeys(
        set(day1["states"]) - skipped, {"success"})
    labels = day1["labels"]
    assert sorted(label.split(":")[0] for label in labels["scrape"]) == ["freshmart", "greengrocer", "valueway"]
    assert all(label.endswith(" stores") for label in labels["scrape"]), labels["scrape"]
    assert labels["health_check"] and all(label.startswith("groups ") for label in labels["health_check"])
    assert all(" pair(s) from stores " in label for label in labels.get("compare_pairs", [])), labels


def test_a_dry_run_skips_every_step_that_fetches_or_writes(dag_runs):
    with dag_runs.on("day0") as runs:
        dry = runs.run(1, {"full_scrape": True, "dry_run": True})
    assert dry["state"] == "success"
    assert dry["after"] == dry["before"]
    for task in ("scrape", *MAIN_STEPS, "rescrape_anchors"):
        assert dry["states"][task] == {"skipped"}, task
    assert dry["states"]["merge_groups"] == {"success"}, "group decisions are computed and logged"


def test_a_bad_param_fails_the_run_at_start_and_nothing_else_runs(dag_runs):
    with dag_runs.on("day0") as runs:
        bad = runs.run(1, {"stores": ["NOPE999"]})
    assert bad["state"] == "failed"
    assert bad["states"]["start"] == {"failed"}
    assert all(states <= {"upstream_failed", "skipped", "removed"}
               for task, states in bad["states"].items() if task != "start"), bad["states"]
    assert bad["after"] == bad["before"], "a refused run writes nothing"


def test_one_chain_down_fails_its_own_task_and_the_run_while_the_others_are_grouped(dag_runs):
    with dag_runs.on("day0") as runs:
        down = runs.run(1, events=(Event("server_error", "greengrocer", count=None),))  # locator included
    assert down["state"] == "failed"
    assert down["states"]["scrape"] == {"failed", "success"}
    assert down["states"]["summary"] == {"failed"}, "the summary is written, then the run turns red"
    for task in ("resolve", "upsert", "health_check_batches", "merge_groups"):
        assert down["states"][task] == {"success"}, task
    assert "success" in down["states"]["health_check"]
    assert down["summary"]["totals"]["chains_down"] == ["greengrocer"]
    assert {"freshmart", "valueway"} <= _chains(down["scraped"])


def test_a_scrape_task_that_fails_hard_fails_the_run_naming_its_batches(dag_runs):
    with dag_runs.on("day0") as runs, _scrape_fails(before="valueway", after="freshmart"):
        crash = runs.run(1)
    assert crash["state"] == "failed"
    assert "failed" in crash["states"]["scrape"] and crash["states"]["summary"] == {"failed"}
    for task in ("resolve", "upsert", "health_check_batches", "merge_groups"):
        assert crash["states"][task] == {"success"}, task  # the other chains go on
    totals = crash["summary"]["totals"]
    assert totals["chains_down"] == []
    assert {key.split(":")[0] for key in totals["batches_not_scraped"]} == {"valueway", "freshmart"}
    assert {"freshmart", "greengrocer"} <= _chains(crash["scraped"]), "freshmart's batch ran, then its task failed"


def test_a_failed_plan_fails_the_run(dag_runs):
    with dag_runs.on("day0") as runs, _plan_fails():
        crash = runs.run(1)
    assert crash["state"] == "failed"
    assert crash["states"]["plan"] == {"failed"} and crash["states"]["summary"] == {"upstream_failed"}
    assert crash["scraped"] == set()


# the runs on later chapters last: meanwhile the worker playing the story has built them


def test_a_run_for_a_date_before_the_last_daily_run_is_a_backfill_and_skips_group_maintenance(dag_runs):
    with dag_runs.on("day1") as runs:
        mover = runs.facts["mover"]
        back = runs.run(0, {"stores": [mover]})
    assert back["state"] == "success" and back["backfill"] is True
    assert f"freshmart/{mover}" in back["scraped"]
    for task in ("health_check", "compare_pairs", "rescrape_anchors"):
        assert back["states"][task] == {"skipped"}, task
    assert back["events"] == [] and back["after"]["groups"] == back["before"]["groups"]


def test_an_anchor_that_stays_down_takes_the_rescrape_branch(dag_runs):
    with dag_runs.on("day2") as runs:
        failing = Event("server_error", "freshmart", store=runs.facts["failing"], count=None)
        day3 = runs.run(3, events=(failing,))
    assert day3["state"] == "success"
    assert "anchor_replaced" in day3["events"]
    assert day3["states"]["rescrape_anchors"] == {"success"} and day3["states"]["upsert_rescraped"] == {"success"}
    assert day3["states"]["anchors_current"] == {"skipped"}
    assert all(label.startswith("anchors of ") for label in day3["labels"]["rescrape_anchors"])
    assert day3["summary"]["totals"]["rescrape"]["ok"] >= 1


@contextmanager
def _scrape_fails(before: str, after: str) -> Iterator[None]:
    """One chain's scrape tasks fail before they record anything (a bug), another's after (a lost worker)."""
    from pricegroups import pipeline

    real = pipeline.scrape

    def scrape(conn, context, batch, *args, **kwargs):
        main = kwargs.get("step", "scrape") == "scrape"
        if main and batch["chain"] == before:
            raise RuntimeError(f"a bug in the scraper ({before})")
        result = real(conn, context, batch, *args, **kwargs)
        if main and batch["chain"] == after:
            raise RuntimeError(f"worker lost after {after}'s batch recorded its outcome")
        return result

    pipeline.scrape = scrape  # dag.test() runs the tasks in this process
    try:
        yield
    finally:
        pipeline.scrape = real


@contextmanager
def _plan_fails() -> Iterator[None]:
    from airflow.sdk.exceptions import AirflowFailException

    from pricegroups import pipeline

    real = pipeline.plan

    def plan(conn, context):
        raise AirflowFailException("a bug in the planner")  # no retry: the test does not wait for one

    pipeline.plan = plan
    try:
        yield
    finally:
        pipeline.plan = real
