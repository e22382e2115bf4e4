"""One DAG run's steps as plain functions: a connection and plain data in, ids and counts out.

The Airflow DAG (dags/pricegroups_daily.py) only wires these together; they
are equally callable from a script or a test. Nothing here reads an Airflow
context: the run is described by a `RunContext` built from the run's params
and logical date, small enough to travel through XCom as a dict.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

import psycopg

from pricegroups.batching import chain_batches, split
from pricegroups.catalogue.enrich import enrich as enrich_catalogue
from pricegroups.catalogue.postprocess import post_process as post_process_catalogue
from pricegroups.catalogue.reconcile import reconcile as reconcile_catalogue
from pricegroups.catalogue.resolve import resolve_run
from pricegroups.errors import ChainDown, ConfigError, PricegroupsError
from pricegroups.grouping import service as grouping
from pricegroups.grouping import lateness, planning, scheduling, spotcheck, verification
from pricegroups.grouping.planning import plan_run
from pricegroups.grouping.repository import record_cadence
from pricegroups.grouping.rules.cadence import Cadence
from pricegroups import retention, runlog
from pricegroups.migrate import migrate
from pricegroups.scrape.context import ConnectionLookup
from pricegroups.scrape.service import scrape_stores, sync_stores
from pricegroups.scrape.snapshots import snapshot_store
from pricegroups.scrape.spot import spot_check_stores
from pricegroups.settings import ESTIMATE_DAYS, Settings, load_settings
from pricegroups.stores import check_chain_code
from pricegroups.upsert import upsert_scraped_items

log = logging.getLogger(__name__)

# what a scheduled run uses; the DAG's Param defaults say the same. window_hours None: the settings' window
# (PRICEGROUPS_WINDOW_HOURS, else Settings' default): a run param overrides a setting only when it is given
DEFAULT_PARAMS: dict[str, Any] = {"stores": [], "chains": [], "full_scrape": False, "window_hours": None, "dry_run": False}
PARAM_KEYS = set(DEFAULT_PARAMS)
SETTING_PARAMS = ("window_hours",)  # params that override the setting of the same name when given


@dataclass(frozen=True)
class RunContext:
    """What every step needs to know about its run; JSON-able for XCom."""

    run_id: str
    as_of: str  # ISO 8601 of the logical date: drives the window, snapshots, scraped_at
    chains: list[str] = field(default_factory=list)
    store_ids: list[int] | None = None
    full_scrape: bool = False
    dry_run: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    backfill: bool = False  # Airflow's backfill, or a manual run for an old date: no group maintenance

    @property
    def as_of_datetime(self) -> datetime:
        return datetime.fromisoformat(self.as_of)

    def load_settings(self) -> Settings:
        return load_settings(self.settings)

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> "RunContext":
        return cls(**data)


def record_step(conn: psycopg.Connection, context: RunContext, step: str, part: str, counts: Mapping[str, Any]) -> None:
    """Keep a step's counts with the run in the run log (runlog.record_step), committed; a dry run keeps none."""
    if context.dry_run:
        return
    runlog.record_step(conn, context.run_id, step, counts, part)
    conn.commit()


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's params, checked beyond what the JSON schema can say; ConfigError on bad input."""
    unknown = set(params) - PARAM_KEYS
    if unknown:
        raise ConfigError(f"unknown param(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(PARAM_KEYS))}")
    params = {**DEFAULT_PARAMS, **params}
    stores = params["stores"] or []
    chains = params["chains"] or []
    for name, values in (("stores", stores), ("chains", chains)):
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError(f"param {name} must be a list of non-empty codes, got {values!r}")
    for chain in chains:
        check_chain_code(chain.strip())
    window = params["window_hours"]
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 24 * 60):
        raise ConfigError(f"param window_hours must be an integer from 1 to 1440, got {window!r}")
    for name in ("full_scrape", "dry_run"):
        if not isinstance(params[name], bool):
            raise ConfigError(f"param {name} must be true or false, got {params[name]!r}")
    return {
        "stores": [s.strip() for s in stores],
        "chains": [c.strip() for c in chains],
        "full_scrape": params["full_scrape"],
        "window_hours": window,
        "dry_run": params["dry_run"],
    }


def store_ids_for_codes(conn: psycopg.Connection, codes: Sequence[str]) -> list[int]:
    """Store codes (`CODE` or `chain/CODE`) to ids in one query; unknown or ambiguous codes are an error."""
    split = [code.rpartition("/") for code in codes]
    rows = conn.execute(
        """SELECT w.code, array_agg(DISTINCT s.store_id) FILTER (WHERE s.store_id IS NOT NULL)
           FROM unnest(%s::text[], %s::text[], %s::text[]) AS w(code, chain, store)
           LEFT JOIN chains c ON w.chain = '' OR c.code = w.chain
           LEFT JOIN stores s ON s.chain_id = c.chain_id AND s.code = w.store
           GROUP BY w.code""",
        (list(codes), [chain for chain, _, _ in split], [store for _, _, store in split]),
    ).fetchall()
    found = {code: ids or [] for code, ids in rows}
    problems = []
    for code, (_, _, store) in zip(codes, split):
        if not found[code]:
            problems.append(f"unknown store {code!r}")
        elif len(found[code]) > 1:
            problems.append(f"store code {code!r} exists in several chains; write it as chain/{store}")
    if problems:
        raise ConfigError("; ".join(problems))
    return sorted({found[code][0] for code in codes})


RUN_TYPES = ("scheduled", "manual", "backfill", "asset_triggered", "asset_materialization")


def start(
    conn: psycopg.Connection, run_id: str, logical_date: datetime, params: Mapping[str, Any],
    run_type: str = "manual", run_interval_hours: float | None = None,
) -> RunContext:
    """Migrate, validate the params, and record the run and its cadence (not in a dry run).

    `run_interval_hours`: the time between two runs of the DAG's schedule (the
    DAG derives it); None keeps the `run_interval_hours` setting. Every step of
    the run, and the effective_prices view, use the windows of that cadence.

    A run is a backfill when Airflow says so (`run_type` "backfill"), and also when it
    is a manual run for a date older than a daily run already recorded: group
    decisions belong to the newest data, so such runs re-process their date's prices
    (which never makes a stored price older) and leave the groups alone. Scheduled
    runs always maintain the groups.
    """
    if logical_date.tzinfo is None:
        raise ConfigError("the logical date must be timezone-aware")
    if run_type not in RUN_TYPES:
        raise ConfigError(f"unknown run type {run_type!r}; known: {', '.join(RUN_TYPES)}")
    checked = validate_params(params)
    migrate(conn)
    # only the params the run gave override settings: PRICEGROUPS_* variables hold otherwise
    overrides: dict[str, Any] = {k: checked[k] for k in SETTING_PARAMS if checked[k] is not None}
    if run_interval_hours is not None:
        overrides["run_interval_hours"] = run_interval_hours
    settings = load_settings(overrides)
    known_chains = {c for (c,) in conn.execute("SELECT code FROM chains")}
    missing = set(checked["chains"]) - known_chains
    if missing:
        raise ConfigError(f"unknown chain code(s): {', '.join(sorted(missing))}; known: {', '.join(sorted(known_chains))}")
    store_ids = store_ids_for_codes(conn, checked["stores"]) if checked["stores"] else None
    backfill = run_type == "backfill"
    if run_type == "manual":
        later = conn.execute(
            """SELECT max(logical_date) FROM runs
               WHERE logical_date > %s AND run_id <> %s AND NOT backfill""", (logical_date, run_id)
        ).fetchone()[0]
        if later is not None:
            log.info("manual run %s is for a date older than the daily run of %s: it runs as a backfill", run_id, later)
            backfill = True
    if backfill:
        log.info("run %s is a backfill: prices of its date only (never older), group maintenance skipped", run_id)
    context = RunContext(
        run_id=run_id,
        as_of=logical_date.isoformat(),
        chains=checked["chains"] or sorted(known_chains),
        store_ids=store_ids,
        full_scrape=checked["full_scrape"],
        dry_run=checked["dry_run"],
        settings={"window_hours": settings.window_hours, "run_interval_hours": settings.run_interval_hours},
        backfill=backfill,
    )
    if not context.dry_run:
        conn.execute(
            """INSERT INTO runs (run_id, logical_date, params, run_type, backfill) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (run_id) DO UPDATE SET params = EXCLUDED.params""",
            (run_id, logical_date, json.dumps(checked), run_type, backfill),
        )
        if not backfill:  # a backfill re-processes an old date: the schedule's cadence stays as it is
            record_cadence(conn, Cadence.of_hours(settings.run_interval_hours))
    conn.commit()
    return context


def plan(conn: psycopg.Connection, context: RunContext) -> list[dict[str, Any]]:
    """Choose the stores to scrape and cut them into scrape batches, one chain's stores each.

    The store locators are read by the scrape tasks (each chain's first batch
    syncs its chain, inside the scrape pool), so one chain's outage fails only
    that chain's task. A chain with nothing planned still gets a batch to sync
    its locator: that is how a new chain's stores are found on its first day.
    A big chain is split so that the number of batches stays within
    `max_map_instances` whatever the number of stores.
    """
    settings = context.load_settings()
    as_of = context.as_of_datetime
    reasons: dict[int, str] = {}
    store_ids = plan_run(  # a re-run of the run gets its first attempt's plan (DESIGN §6.4)
        conn, context.run_id, as_of, settings, stores=context.store_ids, chains=context.chains,
        full_scrape=context.full_scrape, reasons=reasons, record=not context.dry_run,
    )
    if not context.dry_run:
        # why each member is scraped; a re-run of the plan keeps the first draw
        verification.record_plan(conn, context.run_id, as_of, reasons)
    conn.commit()
    batches = scrape_batches(conn, store_ids, settings.max_map_instances, settings.map_min_stores)
    if context.store_ids is None and not context.dry_run:
        batches = with_locator_syncs(batches, context.chains)
        if not (context.backfill or context.full_scrape) and settings.spot_check_pages > 0:
            batches = with_spot_checks(batches, spotcheck.members_to_spot_check(conn, context.chains, store_ids))
        conn.commit()
    return batches


def with_locator_syncs(batches: list[dict[str, Any]], chains: Sequence[str]) -> list[dict[str, Any]]:
    """Mark each chain's first batch to sync the chain's store locator; add a batch for a chain without one."""
    first: dict[str, dict[str, Any]] = {}
    for batch in batches:
        first.setdefault(batch["chain"], batch)
    result = [dict(b, sync=b is first.get(b["chain"])) for b in batches]
    result += [{"chain": c, "store_ids": [], "sync": True} for c in chains if c not in first]
    return result


def with_spot_checks(batches: list[dict[str, Any]], spots: Mapping[str, Sequence[int]]) -> list[dict[str, Any]]:
    """Deal each chain's members to spot-check round-robin over its batches (`spot_ids`); a chain without one gets one."""
    result = [dict(b, spot_ids=[]) for b in batches]
    for chain, store_ids in spots.items():
        mine = [b for b in result if b["chain"] == chain]
        if not mine:
            mine = [{"chain": chain, "store_ids": [], "sync": False, "spot_ids": []}]
            result += mine
        for i, store_id in enumerate(store_ids):
            mine[i % len(mine)]["spot_ids"].append(store_id)
    return result


def scrape_batches(
    conn: psycopg.Connection, store_ids: Sequence[int], cap: int, min_per_batch: int = 1
) -> list[dict[str, Any]]:
    """The stores' scrape batches (batching.chain_batches), by chain code and store id."""
    rows = conn.execute(
        """SELECT c.code, array_agg(s.store_id ORDER BY s.store_id) FROM stores s JOIN chains c USING (chain_id)
           WHERE s.store_id = ANY(%s) GROUP BY c.code ORDER BY c.code""",
        (list(store_ids),),
    ).fetchall()
    return chain_batches(dict(rows), cap, min_per_batch)


def batch_label(batch: Mapping[str, Any]) -> str:
    ids = batch.get("store_ids") or []
    return f"{batch.get('chain')}: {len(ids)} stores" if ids else str(batch.get("chain"))


def batch_key(batch: Mapping[str, Any]) -> str:
    """The part a scrape batch records its counts under (`summary.steps.scrape.<key>`), from the batch as
    planned: `chain:<first store id>`, or `chain:sync` for a batch that only syncs the store locator."""
    ids = batch.get("store_ids") or []
    return f"{batch['chain']}:{min(ids)}" if ids else f"{batch['chain']}:sync"


def missing_batches(planned: Sequence[Mapping[str, Any]], recorded: Mapping[str, Any]) -> list[str]:
    """Keys of the planned scrape batches that recorded no outcome: their task failed before it got that far
    (a crash, a database error, a worker lost after its retries)."""
    return sorted({batch_key(b) for b in planned} - set(recorded))


def run_failure(summary: Mapping[str, Any]) -> str | None:
    """Why a run whose summary this is must end failed (for alerting), or None: a chain down, or a planned
    scrape batch that failed or recorded nothing (its stores were not scraped this run)."""
    problems = []
    if summary.get("chains_down"):
        problems.append(f"scrape failed for chain(s) {', '.join(summary['chains_down'])}")
    if summary.get("batches_not_scraped"):
        problems.append("scrape task failed or recorded nothing for batch(es) "
                        f"{', '.join(summary['batches_not_scraped'])} (chain:first store id)")
    return "; ".join(problems) or None


def scrape(
    conn: psycopg.Connection, context: RunContext, batch: Mapping[str, Any], step: str = "scrape",
    storage_options: Mapping[str, Any] | None = None, connection_lookup: ConnectionLookup | None = None,
) -> dict[str, Any]:
    """Scrape one batch of stores of one chain into scraped_items (one transaction per store).

    A batch marked `sync` reads the chain's store locator first and scrapes the
    stores it finds new as well. When more than `max_failed_share` of the stores
    failed (closed stores aside), ChainDown is raised after every outcome is
    recorded: the task fails, Airflow retries it (snapshots make the retry
    replay what was fetched), and the other chains go on. A stale anchor
    re-scrape (`step` "rescrape") only records it: the summary fails the run.
    `connection_lookup` reads a profile's secret from a named connection (the DAG gives Airflow's).
    """
    settings = context.load_settings()
    store_ids = list(batch["store_ids"])
    synced: dict[str, Any] = {}
    if batch.get("sync"):
        try:
            synced = sync_stores(conn, batch["chain"], settings, context.as_of_datetime, context.run_id,
                                 storage_options=storage_options, connection_lookup=connection_lookup)
        except PricegroupsError as exc:  # known stores are still scraped from their URL template
            conn.rollback()
            if not store_ids:
                raise ChainDown(f"{batch['chain']}: store locator unavailable: {exc}") from exc
            log.warning("%s: store locator unavailable, no new stores today: %s", batch["chain"], exc)
        new = [f"{batch['chain']}/{code}" for code in synced.get("new", [])]
        store_ids += [i for i in (store_ids_for_codes(conn, new) if new else []) if i not in store_ids]
        conn.commit()  # scrape_stores commits per store and wants no transaction open
    counts = scrape_stores(conn, context.run_id, context.as_of_datetime, batch["chain"], store_ids, settings,
                           storage_options=storage_options, connection_lookup=connection_lookup)
    counts["new_stores"] = len(synced.get("new", []))
    if batch.get("spot_ids"):  # after the batch's own stores: a slow spot check never delays a scrape
        counts.update(spot_check_stores(conn, context.run_id, context.as_of_datetime, batch["chain"],
                                        list(batch["spot_ids"]), settings, connection_lookup=connection_lookup))
    key = batch_key(batch)  # as planned, whatever stores the locator sync added: the summary checks it
    down = batch_down(counts, settings.max_failed_share)
    counts["down"] = down is not None  # a retry that succeeds records over it
    record_step(conn, context, step, key, counts)
    if down and step == "scrape":
        raise ChainDown(down)
    if down:  # a stale anchor re-scrape: maintenance goes on; the summary fails the run for it
        log.warning("%s", down)
    return {k: v for k, v in counts.items() if not isinstance(v, list)}


def rescrape_anchors(
    conn: psycopg.Connection, context: RunContext, batch: Mapping[str, Any],
    storage_options: Mapping[str, Any] | None = None, connection_lookup: ConnectionLookup | None = None,
) -> dict[str, Any]:
    """Re-scrape one batch of stale anchors (and members to scrape now): `scrape` recorded as "rescrape",
    which never fails the task for a chain down (group maintenance goes on; the summary fails the run)."""
    return scrape(conn, context, batch, step="rescrape", storage_options=storage_options,
                  connection_lookup=connection_lookup)


def batch_down(counts: Mapping[str, Any], max_failed_share: float) -> str | None:
    """Why the batch fails, when failed stores (not counting stores found gone) exceed the share; else None."""
    gone = set(counts.get("gone_store_ids") or [])
    failed = [s for s in counts.get("failed_store_ids") or [] if s not in gone]
    judged = counts.get("stores", 0) - len(gone)
    if not failed or len(failed) <= max_failed_share * judged:
        return None  # partial failures are logged and skipped (DESIGN 6.3)
    locator = f"; store locator: {counts['locator_error']}" if counts.get("locator_error") else ""
    return f"{counts.get('chain')}: {len(failed)} of {judged} stores failed{locator}"


def resolve(conn: psycopg.Connection, context: RunContext) -> dict[str, int]:
    counts = resolve_run(conn, context.run_id, context.load_settings())
    conn.commit()
    return counts


def reconcile(conn: psycopg.Connection, context: RunContext) -> dict[str, int]:
    counts = reconcile_catalogue(conn, context.run_id, context.load_settings())
    conn.commit()
    return counts


def enrich(conn: psycopg.Connection, context: RunContext) -> dict[str, int]:
    counts = enrich_catalogue(conn, context.run_id, context.load_settings())
    conn.commit()
    return counts


def upsert(conn: psycopg.Connection, context: RunContext, store_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Bulk upsert the run's resolved items (optionally only some stores') into prices.

    First, in the same transaction, the planned members' own rows are saved as
    the baseline of this run's error measurement (what was served for them):
    the upsert is about to overwrite them.
    """
    verification.take_baseline(conn, context.run_id, store_ids)
    result = upsert_scraped_items(conn, context.run_id, context.load_settings(), store_ids)
    conn.commit()
    record_step(conn, context, "upsert" if store_ids is None else "rescrape_upsert", "all", result.as_counts())
    return result.as_counts()


def post_process(
    conn: psycopg.Connection, context: RunContext, storage_options: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Close the run's catalogue work (catalogue/postprocess.py), then apply retention and measure storage.

    Retention (retention.py: the per-run tables, in committed chunks; snapshots
    of dates older than `snapshot_keep_days`) is a daily run's: a backfill's
    logical date is old, and it prunes nothing. Every run records the
    database's size by table group and the snapshot store's, with their change
    since the previous run (`summary.steps.storage`).
    """
    settings = context.load_settings()
    as_of = context.as_of_datetime
    counts = post_process_catalogue(conn, context.run_id, as_of, settings)
    conn.commit()
    snapshots = snapshot_store(settings, storage_options)
    if not context.backfill:
        pruned = retention.prune_run_records(conn, context.run_id, as_of, settings)
        pruned["snapshot_dates"] = snapshots.prune(as_of - timedelta(days=settings.snapshot_keep_days))
        if counts.get("staging_rows_deleted"):
            retention.vacuum_tables(conn, ["scraped_items"])
        record_step(conn, context, "retention", "all", pruned)
        counts.update({f"pruned_{k}": v for k, v in pruned.items()})
    snapshot_bytes, snapshot_files = snapshots.usage()
    storage = retention.storage_counts(retention.group_sizes(retention.table_sizes(conn)), snapshot_bytes,
                                       snapshot_files, retention.previous_storage(conn, context.run_id, as_of))
    conn.commit()
    record_step(conn, context, "storage", "all", storage)
    return counts


def find_stale_anchors(conn: psycopg.Connection, context: RunContext) -> list[dict[str, Any]]:
    """Scrape batches of the anchors that have no current pricing (after anchor succession)."""
    if context.backfill:
        return []
    settings = context.load_settings()
    groups = grouping.find_stale_anchors(
        conn, context.as_of_datetime, settings, context.chains, run_id=context.run_id, dry_run=context.dry_run
    )
    conn.commit()
    kept = None if context.dry_run else planning.kept_rescrape(conn, context.run_id)
    if kept is not None:  # a re-run re-scrapes what its first attempt did (DESIGN §6.4)
        return scrape_batches(conn, kept, settings.max_map_instances, settings.map_min_stores)
    allowed = None if context.store_ids is None else set(context.store_ids)
    anchors = [a for a in grouping.anchors_of(conn, groups) if allowed is None or a in allowed]
    # members scraped in full now, checked by the health check: a jumped or late anchor's (so that it can be
    # re-elected), after a chain-wide change (a new week's specials) those covering what anchors lack, and
    # members whose spot check disagrees with what is served; each keeps the first reason that names it
    # (grouping/scheduling.py's table)
    shares = grouping.anchor_fresh_shares(conn, context.as_of_datetime, context.chains)
    forced = grouping.jumped_anchor_members(conn, context.as_of_datetime, settings, context.chains, shares=shares)
    if not context.dry_run:
        # the anchors' side of lateness is in once their scrape is: counted now, a late anchor's witnesses are
        # scraped and the role handed over in this run, not the next (a run later is two days at 48 h);
        # the merge step counts the run again, with the members re-scraped below
        lateness.record_lateness(conn, context.run_id, context.as_of_datetime, settings, context.chains)
        conn.commit()
    forced += grouping.late_anchor_members(conn, context.as_of_datetime, context.chains,
                                          Cadence.of_hours(settings.run_interval_hours))
    complement = [] if context.dry_run else grouping.complement_members(
        conn, context.as_of_datetime, settings, context.chains, shares=shares)
    suspects = [] if context.dry_run else spotcheck.judge_spot_checks(conn, context.run_id, settings)
    reasons = scheduling.first_reasons(scheduling.RESCRAPE, [("forced", forced), ("complement", complement),
                                                            ("spot", suspects)], allowed)
    if reasons and not context.dry_run:
        verification.record_plan(conn, context.run_id, context.as_of_datetime, reasons)
    rescrape = sorted(set(anchors) | set(reasons))
    if not context.dry_run:
        planning.keep_rescrape(conn, context.run_id, rescrape)
    conn.commit()
    return scrape_batches(conn, rescrape, settings.max_map_instances, settings.map_min_stores)


def upsert_rescraped(conn: psycopg.Connection, context: RunContext, batches: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Resolve, enrich and upsert what the stale-anchor re-scrape fetched.

    Enriched like the main upsert's items (unit prices the site does not show):
    upserted without, a re-scraped store's rows would differ from the same
    observation upserted by the main step, and a re-run would rewrite them.
    """
    store_ids = [s for b in batches for s in b["store_ids"]]
    resolved = resolve_run(conn, context.run_id, context.load_settings(), part="rescrape")
    conn.commit()
    enrich_catalogue(conn, context.run_id, context.load_settings(), part="rescrape")  # idempotent
    conn.commit()
    counts = upsert(conn, context, store_ids)
    return {**{f"resolve_{k}": v for k, v in resolved.items()}, **counts}


def health_check_batches(conn: psycopg.Connection, context: RunContext) -> list[list[int]]:
    """The run's groups (of its chains; with `stores`, only those stores' groups) in mapped batches."""
    if context.backfill:
        return []
    settings = context.load_settings()
    group_ids = [r[0] for r in conn.execute(
        """SELECT DISTINCT s.group_id FROM stores s JOIN chains c USING (chain_id)
           WHERE c.code = ANY(%s) AND (%s::int[] IS NULL OR s.store_id = ANY(%s::int[]))
           ORDER BY 1""",
        (context.chains, context.store_ids, context.store_ids),
    )]
    if not context.dry_run:  # the chains' change rates, measured once for every later task of the run
        grouping.measure_change_rates(conn, context.run_id, settings, context.chains)
    conn.commit()
    return split(group_ids, settings.max_map_instances, settings.map_min_groups)


def health_check(conn: psycopg.Connection, context: RunContext, group_ids: Sequence[int]) -> dict[str, int]:
    # no deduplication here: the merge step deduplicates the run's verified members once, against their
    # anchors after the merges, so the result does not depend on whether a re-run finds them merged already
    counts = grouping.health_check_groups(
        conn, list(group_ids), context.as_of_datetime, context.run_id, context.load_settings(), context.dry_run,
        deduplicate=False,
    )
    conn.commit()
    record_step(conn, context, "health", f"groups:{group_ids[0]}", counts)  # batches are consecutive: distinct
    return counts


def candidate_pairs(conn: psycopg.Connection, context: RunContext) -> list[list[list[int]]]:
    """Candidate anchor pairs from blocking, cut into at most `max_map_instances` batches."""
    if context.backfill:
        return []
    settings = context.load_settings()
    pairs = grouping.candidate_pairs(conn, context.as_of_datetime, settings, context.chains, run_id=context.run_id)
    conn.commit()
    return split([list(p) for p in pairs], settings.max_map_instances, settings.map_min_pairs)


def compare_pairs(conn: psycopg.Connection, context: RunContext, pairs: Sequence[Sequence[int]]) -> dict[str, int]:
    counts = grouping.compare_pairs(
        conn, [tuple(p) for p in pairs], context.as_of_datetime, context.run_id, context.load_settings()  # type: ignore[misc]
    )
    conn.commit()
    record_step(conn, context, "compare", f"pairs:{pairs[0][0]}~{pairs[0][1]}", counts)  # distinct: see batching.split
    return counts


def merge_groups(conn: psycopg.Connection, context: RunContext) -> dict[str, int]:
    if context.backfill:
        return {"skipped_backfill": 1}
    settings = context.load_settings()
    # before the merges and the deduplication: against the anchors the members were checked with
    late = {} if context.dry_run else lateness.record_lateness(
        conn, context.run_id, context.as_of_datetime, settings, context.chains)
    counts = grouping.merge_groups(
        conn, context.as_of_datetime, context.run_id, settings, context.chains, context.dry_run
    )
    counts.update(late)
    conn.commit()
    if not context.dry_run:  # the run's verified members, once, against their anchors after the merges
        counts["rededuplicated"] = grouping.deduplicate_members(
            conn, context.as_of_datetime, settings, context.chains, since=context.as_of_datetime)["deduplicated"]
        conn.commit()
    record_step(conn, context, "merge", "all", counts)
    return counts


def summary(
    conn: psycopg.Connection, context: RunContext, planned: Sequence[Mapping[str, Any]] | None = None,
    failed: Sequence[int] = (),
) -> dict[str, Any]:
    """Add up the counts the steps recorded with the run, store the totals and return them.

    `planned` is the plan's scrape batches and `failed` the indexes of those whose task failed (Airflow's
    map indexes): `batches_not_scraped` names every planned batch that failed or recorded nothing, but
    those recorded down (`chains_down` names their chains); `run_failure` then says why the run fails.
    """
    row = conn.execute("SELECT summary FROM runs WHERE run_id = %s", (context.run_id,)).fetchone()
    recorded = runlog.step_parts(row[0] if row else None)
    summary: dict[str, Any] = runlog.step_totals(row[0] if row else None)
    groups = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE members > 0) FROM
           (SELECT g.group_id, count(s.store_id) - 1 AS members FROM store_groups g
            JOIN stores s USING (group_id) GROUP BY 1) x"""
    ).fetchone()
    summary["groups"] = {"groups": groups[0], "with_members": groups[1]}
    summary["chains_down"] = sorted({part.get("chain") for step in ("scrape", "rescrape")
                                     for part in (recorded.get(step) or {}).values() if part.get("down")})
    scraped = recorded.get("scrape") or {}
    not_scraped = set(missing_batches(planned or [], scraped)) if not context.dry_run else set()
    not_scraped |= {batch_key(planned[i]) for i in failed if planned and 0 <= i < len(planned)}
    summary["batches_not_scraped"] = sorted(not_scraped - {k for k, part in scraped.items() if part.get("down")})
    summary["verification"] = verification_summary(conn, context)
    summary["spot_checks"] = dict(spotcheck.spot_summary(conn, context.run_id))
    if context.backfill and not context.dry_run:
        summary["snapshots"] = backfill_snapshots(conn, context)
    if not context.dry_run:
        conn.execute(
            "UPDATE runs SET finished_at = now(), summary = summary || %s::jsonb WHERE run_id = %s",
            (json.dumps({"totals": summary}, default=str), context.run_id),
        )
    conn.commit()
    log.info("run %s summary: %s", context.run_id, json.dumps(summary, default=str))
    log.info("run %s: served prices %s (random verifications, last %d days)", context.run_id,
             verification.format_estimate(summary["verification"][f"estimate_{ESTIMATE_DAYS}d"]),
             ESTIMATE_DAYS)
    return summary


def backfill_snapshots(conn: psycopg.Connection, context: RunContext) -> dict[str, Any]:
    """Whether a backfill's date is beyond snapshot retention, and how many stores it replayed or fetched live.

    Snapshots older than `snapshot_keep_days` before the newest daily run are
    gone: a backfill of such a date fetched today's pages, not its date's.
    """
    keep = context.load_settings().snapshot_keep_days
    newest, replayed, live = conn.execute(
        """SELECT (SELECT max(logical_date) FROM runs WHERE NOT backfill),
                  count(*) FILTER (WHERE from_snapshot), count(*) FILTER (WHERE NOT from_snapshot)
           FROM scrape_log WHERE run_id = %s AND status = 'ok'""", (context.run_id,)).fetchone()
    beyond = newest is not None and context.as_of_datetime < newest - timedelta(days=keep)
    result: dict[str, Any] = {"snapshot_keep_days": keep, "beyond_retention": beyond,
                              "stores_replayed": replayed, "stores_fetched_live": live}
    if beyond:
        result["note"] = (f"{context.as_of_datetime.date()} is more than {keep} days (snapshot_keep_days) before the "
                          f"newest daily run ({newest.date()}): its snapshots were removed, so its {live} store(s) "
                          "were fetched live: today's pages, recorded under the backfill's date")
        log.warning("backfill %s: %s", context.run_id, result["note"])
    return result


def verification_summary(conn: psycopg.Connection, context: RunContext) -> dict[str, Any]:
    """This run's prices checked / wrong per group, and the estimated wrong share served (14 days).

    First records what the run leaves served (`verification.record_verified_members`;
    not for a dry run or a backfill), which the estimate reads: `verification.estimates`'
    "served", the random draws' share weighed by the prices the runs left unverified.
    The draws' own share is kept beside it.
    """
    since = context.as_of_datetime - timedelta(days=ESTIMATE_DAYS)
    chain_ids = grouping.chain_ids(conn, context.chains) if context.chains else None
    if not (context.dry_run or context.backfill):
        verification.record_verified_members(conn, context.run_id, context.as_of_datetime, chain_ids)
    report = verification.error_report(conn, chain_ids, since=since, run_id=context.run_id)
    groups = report.get("groups", {})
    return {
        "run": {
            "stores": sum(g["stores"] for g in groups.values()),
            "checked": sum(g["checked"] for g in groups.values()),
            "wrong": sum(g["wrong"] for g in groups.values()),
            "groups": groups,
        },
        f"estimate_{ESTIMATE_DAYS}d": report["served"]["overall"],
        "chains": report["served"]["chains"],
        f"draws_{ESTIMATE_DAYS}d": report["random"]["overall"],  # had no check reached the members
    }
