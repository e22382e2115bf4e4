"""A DAG run without Airflow: the `pricegroups.pipeline` steps called in dags/pricegroups_daily.py's order.

Rule checks (which stores a day scrapes, what groups and prices it leaves)
need the pipeline's work, not Airflow's scheduling, so they run here at the
cost of the work alone; what only Airflow can show (branches, trigger rules,
mapped labels, task states) stays in tests/dag. Each step gets a connection of
its own, as each task does. Only what the DAG decides is mirrored: a dry run
skips the scrape-to-post-process steps (their `run_if`), the stale-anchor
branch re-scrapes only when there are stale anchors and the run is not dry, a
scrape batch that raises ChainDown fails its own task while the others go on,
and the summary is told which batches failed. Any other exception propagates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
import time
from typing import Any, Callable, Mapping, MutableMapping

import psycopg

from pricegroups import pipeline
from pricegroups.errors import ChainDown
from pricegroups.pipeline import DEFAULT_PARAMS, RunContext

MAIN_STEPS = ("resolve", "reconcile", "enrich", "upsert", "post_process")  # between scrape and the branch


@dataclass(frozen=True)
class DayRun:
    """What a run decided, as the DAG's tasks would have passed it along."""

    run_id: str
    batches: list[dict[str, Any]]  # the plan's scrape batches
    failed: list[int]  # indexes of the batches whose scrape task failed (ChainDown)
    stale: list[dict[str, Any]]  # the re-scrape batches; empty when the branch chose anchors_current
    summary: dict[str, Any]
    failure: str | None  # why the summary task fails the run (pipeline.run_failure); None: success

    @property
    def state(self) -> str:
        return "failed" if self.failure else "success"


def run_day(
    conninfo: str, run_id: str, logical_date: datetime, params: Mapping[str, Any] | None = None,
    run_type: str = "manual", timings: MutableMapping[str, float] | None = None,
) -> DayRun:
    """One run of the daily DAG's steps; `run_type` "manual" is what `dag.test()` records.

    `timings`, when given, gets each step's wall time (connecting included, as a task's), added up
    over its calls by the step's name: the soak compares them between early and late days.
    """
    conf = {**DEFAULT_PARAMS, **(params or {})}

    def _call(conninfo: str, step: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            with psycopg.connect(conninfo, application_name="pricegroups-harness") as conn:
                return step(conn, *args)
        finally:
            if timings is not None:
                timings[step.__name__] = timings.get(step.__name__, 0.0) + time.perf_counter() - started

    context: RunContext = _call(conninfo, pipeline.start, run_id, logical_date, conf, run_type)
    batches = _call(conninfo, pipeline.plan, context)
    failed: list[int] = []
    if not context.dry_run:
        for index, batch in enumerate(batches):
            try:
                _call(conninfo, pipeline.scrape, context, batch)
            except ChainDown:
                failed.append(index)
        if batches and len(failed) == len(batches):
            raise AssertionError("every scrape batch failed: the DAG would stop before resolve")
        for name in MAIN_STEPS:
            _call(conninfo, getattr(pipeline, name), context)
    stale = _call(conninfo, pipeline.find_stale_anchors, context)
    if stale and not context.dry_run:
        for batch in stale:
            _call(conninfo, pipeline.rescrape_anchors, context, batch)
        _call(conninfo, pipeline.upsert_rescraped, context, stale)
    else:
        stale = []
    for group_ids in _call(conninfo, pipeline.health_check_batches, context):
        _call(conninfo, pipeline.health_check, context, group_ids)
    for pairs in _call(conninfo, pipeline.candidate_pairs, context):
        _call(conninfo, pipeline.compare_pairs, context, pairs)
    _call(conninfo, pipeline.merge_groups, context)
    summary = _call(conninfo, pipeline.summary, context, batches, failed)
    return DayRun(run_id, batches, failed, stale, summary, pipeline.run_failure(summary))
