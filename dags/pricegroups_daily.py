"""
### pricegroups_daily

Keeps the latest price of every product at every store current, scraping
about one store (the *anchor*) per store group and inferring the rest.

**Main flow:** migrate and record the run → plan which stores to scrape →
scrape (mapped per chain batch) → resolve → reconcile → enrich → upsert →
post-process → group maintenance: re-scrape stale anchors (a branch, only when
there are any) → health checks (mapped per batch of groups) → inter-group
comparisons (mapped per batch of candidate pairs) → merges → summary.

A chain whose scrape fails does not stop the others: they are resolved,
upserted and grouped, and then the summary fails the run (for alerting),
naming the chains down and the scrape batches that failed or recorded nothing.
A failed `plan` fails the run too.

**Params:** `stores` (store codes, or `chain/code`; empty = all), `chains`
(chain codes; empty = all), `full_scrape`, `window_hours`, `dry_run` (plan and
group decisions are computed and logged; nothing is fetched or written).

The database is the Airflow connection `pricegroups_db`. Every task calls the
function of `pricegroups.pipeline` of the same name (`anchors_current` and the
branch before it only route); XComs carry ids and counts only.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.definitions.decorators.condition import run_if

from pricegroups.schedule import interval_hours, parse_schedule
from pricegroups.stores import CHAIN_CODE_PATTERN

CONN_ID = "pricegroups_db"
SCRAPE_POOL = "pricegroups_scrape"
# a chain's failed scrape batch is retried this often (backoff 20 s, doubling); the DAG tests set 0
SCRAPE_RETRIES = int(os.environ.get("PRICEGROUPS_SCRAPE_RETRIES", "3"))
# checked by the trigger form and the REST API before a run is queued
STORE_PATTERN = r"^[^/\s]+(/[^/\s]+)?$"  # CODE or chain/CODE, no blanks
# daily unless PRICEGROUPS_SCHEDULE says otherwise ("0 6,18 * * *", "2d"); the grouping rules' time windows
# follow the interval between its runs (pricegroups.schedule, grouping/rules/cadence.py)
SCHEDULE = parse_schedule(os.environ.get("PRICEGROUPS_SCHEDULE"))


@contextmanager
def _database() -> Iterator[Any]:
    """A psycopg connection to the `pricegroups_db` Airflow connection (opened per task, never at parse time)."""
    import psycopg
    from airflow.sdk import BaseHook

    from pricegroups.db import conninfo_from_fields

    c = BaseHook.get_connection(CONN_ID)
    conninfo = conninfo_from_fields(c.host, c.port, c.login, c.password, c.schema, c.extra_dejson)
    with psycopg.connect(conninfo, application_name="pricegroups-airflow") as conn:
        yield conn


def _call(step: Callable[..., Any], run: dict, *args: Any, **kwargs: Any) -> Any:
    """Call a pricegroups.pipeline step with a fresh connection and the run's context."""
    from pricegroups.pipeline import RunContext

    with _database() as conn:
        return step(conn, RunContext.from_xcom(run), *args, **kwargs)


def _snapshot_options() -> dict | None:
    """Storage options (credentials) for an object-store snapshot root, from the Airflow connection
    named by PRICEGROUPS_SNAPSHOT_CONN_ID; None for a shared directory."""
    conn_id = os.environ.get("PRICEGROUPS_SNAPSHOT_CONN_ID")
    if not conn_id:
        return None
    from airflow.sdk import BaseHook

    from pricegroups.scrape.snapshots import storage_options_from_connection

    c = BaseHook.get_connection(conn_id)
    return storage_options_from_connection(c.login, c.password, c.extra_dejson)


def _connection_secret(conn_id: str) -> str:
    """A site profile's secret (an API key) from the Airflow connection it names: the connection's password."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).password or ""


def _label(text: str) -> None:
    get_current_context()["label"] = text


def _failed_map_indexes(task_id: str) -> list[int]:
    """Map indexes of this run's instances of a mapped task that ended failed (after their retries)."""
    ctx = get_current_context()
    run_id, prefix = ctx["run_id"], f"{task_id}_"
    states = ctx["ti"].get_task_states(dag_id=ctx["ti"].dag_id, task_ids=[task_id], run_ids=[run_id])
    return sorted(int(key[len(prefix):]) for key, state in (states.get(run_id) or {}).items()
                  if key.startswith(prefix) and key[len(prefix):].isdigit()
                  and str(getattr(state, "value", state)) == "failed")


def _not_dry_run(context: Any) -> bool:
    return not context["params"].get("dry_run", False)


@dag(
    dag_id="pricegroups_daily",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pricegroups"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "stores": Param([], type="array", items={"type": "string", "pattern": STORE_PATTERN}, uniqueItems=True,
                        title="Stores", description="Store codes (or chain/code) to restrict the run to; empty = all."),
        "chains": Param([], type="array", items={"type": "string", "pattern": CHAIN_CODE_PATTERN}, uniqueItems=True,
                        title="Chains", description="Chain codes to restrict the run to; empty = all."),
        "full_scrape": Param(False, type="boolean", title="Full scrape",
                             description="Scrape every store, not just anchors and members drawn for verification."),
        "window_hours": Param(None, type=["null", "integer"], minimum=1, maximum=1440, title="Window (hours)",
                              description="Prices scraped this long before the logical date are current; "
                                          "empty = the setting (PRICEGROUPS_WINDOW_HOURS, default 72)."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Compute and log plan and group decisions; fetch and write nothing."),
    },
)
def pricegroups_daily():
    @task  # a bad param raises AirflowFailException: never retried; an infrastructure hiccup is
    def start() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pricegroups import pipeline
        from pricegroups.errors import ConfigError

        ctx = get_current_context()
        dag_run = ctx["dag_run"]
        logical_date = ctx.get("logical_date") or dag_run.run_after
        run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
        try:
            with _database() as conn:
                return pipeline.start(conn, ctx["run_id"], logical_date, dict(ctx["params"]), run_type,
                                      run_interval_hours=interval_hours(SCHEDULE, logical_date)).to_xcom()
        except ConfigError as exc:  # a bad param or setting: retrying cannot help
            raise AirflowFailException(f"configuration error: {exc}") from exc

    @task
    def plan(run: dict) -> list[dict]:
        from pricegroups import pipeline

        return _call(pipeline.plan, run)

    @run_if(_not_dry_run, skip_message="dry run: nothing is fetched")
    @task(pool=SCRAPE_POOL, retries=SCRAPE_RETRIES, retry_delay=timedelta(seconds=20), retry_exponential_backoff=True,
          map_index_template="{{ label }}")
    def scrape(run: dict, batch: dict) -> dict:
        from pricegroups import pipeline

        _label(pipeline.batch_label(batch))
        return _call(pipeline.scrape, run, batch, storage_options=_snapshot_options(),
                     connection_lookup=_connection_secret)

    @run_if(_not_dry_run)
    @task(trigger_rule="all_done_min_one_success")  # one chain's failed scrape does not stop the others
    def resolve(run: dict) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.resolve, run)

    @run_if(_not_dry_run)
    @task
    def reconcile(run: dict) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.reconcile, run)

    @run_if(_not_dry_run)
    @task
    def enrich(run: dict) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.enrich, run)

    @run_if(_not_dry_run)
    @task
    def upsert(run: dict) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.upsert, run)

    @run_if(_not_dry_run)
    @task
    def post_process(run: dict) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.post_process, run, storage_options=_snapshot_options())

    @task(trigger_rule="none_failed")
    def find_stale_anchors(run: dict) -> list[dict]:
        from pricegroups import pipeline

        return _call(pipeline.find_stale_anchors, run)

    @task.branch
    def stale_anchor_branch(run: dict, stale: list[dict]) -> str:
        if stale and not run["dry_run"]:
            return "rescrape_anchors"
        return "anchors_current"

    @task(pool=SCRAPE_POOL, retries=SCRAPE_RETRIES, retry_delay=timedelta(seconds=20), retry_exponential_backoff=True,
          map_index_template="{{ label }}")
    def rescrape_anchors(run: dict, batch: dict) -> dict:
        from pricegroups import pipeline

        _label("anchors of " + pipeline.batch_label(batch))
        return _call(pipeline.rescrape_anchors, run, batch, storage_options=_snapshot_options(),
                     connection_lookup=_connection_secret)

    @task
    def upsert_rescraped(run: dict, stale: list[dict], scraped: list[dict]) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.upsert_rescraped, run, stale)

    @task(trigger_rule="none_failed_min_one_success")
    def health_check_batches(run: dict) -> list[list[int]]:
        from pricegroups import pipeline

        return _call(pipeline.health_check_batches, run)

    @task(map_index_template="{{ label }}")
    def health_check(run: dict, group_ids: list[int]) -> dict:
        from pricegroups import pipeline

        _label(f"groups {group_ids[0]}" + (f"…{group_ids[-1]} ({len(group_ids)})" if len(group_ids) > 1 else ""))
        return _call(pipeline.health_check, run, group_ids)

    @task(trigger_rule="none_failed")
    def candidate_pairs(run: dict) -> list[list[list[int]]]:
        from pricegroups import pipeline

        return _call(pipeline.candidate_pairs, run)

    @task(map_index_template="{{ label }}")
    def compare_pairs(run: dict, pairs: list[list[int]]) -> dict:
        from pricegroups import pipeline

        _label(f"{len(pairs)} pair(s) from stores {pairs[0][0]}~{pairs[0][1]}")
        return _call(pipeline.compare_pairs, run, pairs)

    @task(trigger_rule="none_failed")
    def merge_groups(run: dict) -> dict:
        from pricegroups import pipeline

        return _call(pipeline.merge_groups, run)

    @task(trigger_rule="none_failed")  # `batches`: a failed plan fails the run here (upstream_failed)
    def summary(run: dict, batches: list[dict]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pricegroups import pipeline

        # resolve and the rest go on after a chain's failed scrape task; the run must not end green
        result = _call(pipeline.summary, run, batches, _failed_map_indexes("scrape"))
        failure = pipeline.run_failure(result)
        if failure:  # the summary is written; the run turns red for alerting
            raise AirflowFailException(failure)
        return result

    # main flow
    run = start()
    batches = plan(run)
    scraped = scrape.partial(run=run).expand(batch=batches)
    resolved = resolve(run)
    scraped >> resolved
    reconciled = reconcile(run)
    enriched = enrich(run)
    upserted = upsert(run)
    processed = post_process(run)
    resolved >> reconciled >> enriched >> upserted >> processed

    stale = find_stale_anchors(run)
    processed >> stale
    branch = stale_anchor_branch(run, stale)
    rescraped = rescrape_anchors.partial(run=run).expand(batch=stale)
    rescraped_upserted = upsert_rescraped(run, stale, rescraped)
    anchors_current = EmptyOperator(task_id="anchors_current")
    branch >> [rescraped, anchors_current]

    health_batches = health_check_batches(run)
    [rescraped_upserted, anchors_current] >> health_batches
    checked = health_check.partial(run=run).expand(group_ids=health_batches)
    pairs = candidate_pairs(run)
    checked >> pairs
    compared = compare_pairs.partial(run=run).expand(pairs=pairs)
    merged = merge_groups(run)
    compared >> merged
    merged >> summary(run, batches)


pricegroups_daily()
