"""Run-level grouping functions: a connection and plain arguments in, ids and counts out.

Each function is one DAG task's work (DESIGN.md §4 step 8) and owns its
transactions: decisions for one batch of groups (or one chain's merges) are
applied in one transaction, together with their group_events and the
comparisons they were based on. With `dry_run` the decisions are computed and
logged but nothing is written.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Iterable, Sequence

import psycopg

from pricegroups.errors import ConfigError
from pricegroups.grouping import repository as repo
from pricegroups.grouping import verification
from pricegroups.grouping.blocking import candidate_pairs as _block
from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.rules.compare import Outcome
from pricegroups.grouping.health import (
    anchor_ready, anchor_stale, check_group, complement_members as cover, due_for_check, jumped_anchors,
    turnover_chains,
)
from pricegroups.grouping.rules.anchors import plan_succession, punctual_witnesses
from pricegroups.grouping.rules.cadence import DAILY, Cadence
from pricegroups.grouping.merging import plan_merges
from pricegroups.grouping.model import Decision, GroupState
from pricegroups.grouping.support import group_supports
from pricegroups.settings import Settings

log = logging.getLogger(__name__)


def chain_ids(conn: psycopg.Connection, chains: Sequence[str] | None) -> list[int] | None:
    """Chain codes to ids (None = every chain); an unknown code is a ConfigError."""
    if not chains:
        return None
    rows = dict(conn.execute("SELECT code, chain_id FROM chains WHERE code = ANY(%s)", (list(chains),)).fetchall())
    unknown = sorted(set(chains) - set(rows))
    if unknown:
        raise ConfigError(f"unknown chain code(s): {', '.join(unknown)}")
    return sorted(rows.values())


def measure_change_rates(
    conn: psycopg.Connection, run_id: str, settings: Settings, chains: Sequence[str] | None = None,
) -> dict[int, float | None]:
    """Measure the chains' change rates once for the run (repository.run_change_rates); later tasks read them."""
    ids = chain_ids(conn, chains)
    if ids is None:
        ids = [c for (c,) in conn.execute("SELECT chain_id FROM chains ORDER BY 1")]
    return repo.run_change_rates(conn, run_id, ids, settings)


def find_stale_anchors(
    conn: psycopg.Connection,
    as_of: datetime,
    settings: Settings,
    chains: Sequence[str] | None = None,
    run_id: str | None = None,
    dry_run: bool = False,
) -> list[int]:
    """Group ids whose anchor must be re-scraped before anything in them can be decided.

    First hands the anchor role to the freshest member where the anchor failed
    to scrape `anchor_failures_before_succession` runs in a row (or closed);
    writes anchor_replaced events. Then returns the groups whose anchor has no
    current pricing or, after such a hand-over, no full catalogue.
    """
    groups, stores = repo.load_states(conn, chain_ids(conn, chains))
    handovers = []
    for key in sorted(groups):
        decision = plan_succession(groups[key], stores, as_of, settings)
        if decision is not None:
            handovers.append(decision)
    if handovers and not dry_run:
        with conn.transaction():
            repo.apply_decisions(conn, handovers, groups, as_of, run_id)
        groups, stores = repo.load_states(conn, chain_ids(conn, chains))
    for d in handovers:
        log.info("group %s: anchor %s -> %s (%s)%s", d.group, d.old_anchor, d.new_anchor, d.reason,
                 " [dry run]" if dry_run else "")
    return [key for key, group in sorted(groups.items()) if anchor_stale(stores[group.anchor], as_of, settings)]


def anchor_fresh_shares(conn: psycopg.Connection, as_of: datetime, chains: Sequence[str] | None) -> list[tuple]:
    """(group, chain, share of the anchor's prices first seen in this run, members most recently verified first,
    the anchor's rows) for every anchor scraped at `as_of` that was scraped before. Read once per run: jumped anchors and
    complement scrapes both decide from it."""
    return conn.execute(
        """SELECT g.group_id, g.chain_id,
                  (SELECT count(*) FILTER (WHERE p.scraped_at >= a.last_scraped_at)::float8 / greatest(count(*), 1)
                   FROM prices p WHERE p.store_id = a.store_id) AS fresh,
                  ARRAY(SELECT s.store_id FROM stores s
                        WHERE s.group_id = g.group_id AND s.active AND s.store_id <> g.anchor_store_id
                        ORDER BY s.last_verified_at DESC NULLS LAST, s.store_id) AS members,
                  (SELECT count(*) FROM prices p WHERE p.store_id = a.store_id) AS rows
           FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
           WHERE a.last_scraped_at = %(as_of)s AND a.first_scraped_at < a.last_scraped_at
             AND (%(chains)s::int[] IS NULL OR g.chain_id = ANY(%(chains)s))""",
        {"as_of": as_of, "chains": chain_ids(conn, chains)},
    ).fetchall()


def jumped_anchor_members(
    conn: psycopg.Connection, as_of: datetime, settings: Settings, chains: Sequence[str] | None = None,
    per_group: int = 3, shares: list[tuple] | None = None,
) -> list[int]:
    """Members to scrape now because their anchor's prices just changed far more than its chain's did.

    Reads, for every anchor scraped at `as_of` (and scraped before), the share
    of its prices first seen in this run, and its members most recently
    verified first (`shares`, when the caller read them already); health.jumped_anchors decides
    (docs/grouping.md).
    """
    rows = anchor_fresh_shares(conn, as_of, chains) if shares is None else shares
    jumped = jumped_anchors({g: (chain, fresh) for g, chain, fresh, _, _ in rows}, settings)
    members = {g: m for g, _, _, m, _ in rows}
    return sorted(s for g in jumped for s in members[g][:per_group])


def complement_members(
    conn: psycopg.Connection, as_of: datetime, settings: Settings, chains: Sequence[str] | None = None,
    shares: list[tuple] | None = None,
) -> list[int]:
    """Members to scrape now because their chain's anchors changed en masse (health.turnover_chains).

    Per group of such a chain, the members whose rows refresh most of what the
    group is served beyond its anchor (health.complement_members): after a new
    week's specials those rows are the stale ones, and nothing else refreshes
    them. A chosen member scraped in this run already is not scraped again.
    `shares`: anchor_fresh_shares, when the caller read them already.
    """
    rows = anchor_fresh_shares(conn, as_of, chains) if shares is None else shares
    # the bar is mass_change_share alone, not raised to the chain's own rate (rules/compare.changed_en_masse):
    # measured on bench/sensitivity.py's 2 and 4 %-a-day points, the complement scrapes of a chain that
    # changes that much are what keeps the products its anchors lack fresh (docs/sensitivity.md)
    turned = set(turnover_chains({g: (chain, fresh) for g, chain, fresh, _, _ in rows}, settings))
    groups = [g for g, chain, _, _, _ in rows if chain in turned]
    if not groups:
        return []
    beyond: dict[int, dict[int, set[int]]] = {}
    allowed: dict[int, float] = {}
    scraped_now: set[int] = set()  # already scraped in this run: its rows are fresh, and count as chosen
    for group_id, store_id, product, now, anchor_rows in conn.execute(
        """WITH anchors AS MATERIALIZED (  -- each group's anchor and its rows, counted once (not per row)
               SELECT g.group_id, g.anchor_store_id, (SELECT count(*) FROM prices ap
                                                      WHERE ap.store_id = g.anchor_store_id) AS n
               FROM store_groups g WHERE g.group_id = ANY(%(groups)s))
           SELECT s.group_id, s.store_id, p.product_id, s.last_scraped_at >= %(as_of)s, a.n
           FROM stores s JOIN anchors a ON a.group_id = s.group_id
           JOIN prices p ON p.store_id = s.store_id
           WHERE s.active AND s.store_id <> a.anchor_store_id
             AND NOT EXISTS (SELECT 1 FROM prices ap WHERE ap.store_id = a.anchor_store_id
                                                       AND ap.product_id = p.product_id)""",
        {"as_of": as_of, "groups": groups},
    ):
        beyond.setdefault(group_id, {}).setdefault(store_id, set()).add(product)
        allowed[group_id] = max(1.0, settings.max_member_deviation * anchor_rows)
        if now:
            scraped_now.add(store_id)
    chosen = (cover(members, allowed[group]) for group, members in beyond.items())
    return sorted(m for group in chosen for m in group if m not in scraped_now)


def late_anchor_members(
    conn: psycopg.Connection, as_of: datetime, chains: Sequence[str] | None = None, cadence: Cadence = DAILY,
) -> list[int]:
    """Two members to scrape now in each group whose anchor is often late with changes (rules/lateness.often_late).

    With the anchor and two matching members checked in one run, the health
    check hands the role to the member closest to the group's consensus
    (rules/anchors.elect_anchor, reason "punctual"). The choice is
    rules/anchors.punctual_witnesses; a member scraped at `as_of` already is
    not scraped again.
    """
    rows = conn.execute(
        """SELECT a.late_changes, a.timely_changes,
                  ARRAY(SELECT ARRAY[s.store_id, s.late_changes, s.timely_changes,
                                     (coalesce(s.last_scraped_at, '-infinity') >= %(as_of)s)::int] FROM stores s
                        WHERE s.group_id = g.group_id AND s.active AND s.store_id <> g.anchor_store_id
                        ORDER BY s.last_verified_at DESC NULLS LAST, s.store_id)
           FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
           WHERE a.late_changes > 0 AND (%(chains)s::int[] IS NULL OR g.chain_id = ANY(%(chains)s))""",
        {"as_of": as_of, "chains": chain_ids(conn, chains)},
    ).fetchall()
    chosen: list[int] = []
    for late, on_time, members in rows:
        scraped_now = {store for store, _, _, now in members if now}
        witnesses = punctual_witnesses((late, on_time), [(store, m_late, m_on) for store, m_late, m_on, _ in members],
                                       cadence)
        chosen += [store for store in witnesses if store not in scraped_now]
    return sorted(chosen)


def anchors_of(conn: psycopg.Connection, group_ids: Sequence[int]) -> list[int]:
    """The anchor store ids of some groups (what the stale-anchor branch re-scrapes)."""
    rows = conn.execute(
        "SELECT anchor_store_id FROM store_groups WHERE group_id = ANY(%s) ORDER BY 1", (list(group_ids),)
    ).fetchall()
    return [r[0] for r in rows]


def health_check_groups(
    conn: psycopg.Connection,
    group_ids: Sequence[int],
    as_of: datetime,
    run_id: str | None,
    settings: Settings,
    dry_run: bool = False,
    deduplicate: bool = True,
) -> dict[str, int]:
    """Check the given groups: verify, eject, re-elect or replace drifted anchors; one transaction for the batch.

    Each member scraped this run is measured (DESIGN.md §9): what it charges, read
    before any decision, against what the group it was checked in serves once the
    decisions are applied (verification.record_served_checks). With `deduplicate`
    false, verified members keep their rows until deduplicate_members runs.
    """
    groups, stores = repo.load_states(conn, group_ids=list(group_ids))
    floor_ok = _current_filter(as_of, settings)
    busy = {}
    for key, group in groups.items():
        due = [m for m in group.members if floor_ok(stores[m]) and due_for_check(stores[m])]
        if due:  # a group with nothing to check needs no prices (a bootstrap has thousands)
            busy[key] = due
    decisions: list[Decision] = []
    counts = {"groups": len(groups), "checked": 0, "stale_anchors": 0, "inconclusive": 0, "compared": 0, "reused": 0}
    rates = repo.run_change_rates(conn, run_id, sorted({groups[k].chain for k in busy}), settings) if busy else {}
    computed: dict = {}
    for chain, keys in sorted(_keys_by_chain(groups, busy).items()):
        chain_groups = {k: groups[k] for k in keys}
        wanted = {s for g in chain_groups.values() for s in (g.anchor, *g.members)}
        matrix = repo.load_matrix(conn, stores, wanted, observed_for=_backed_anchors(chain_groups.values()))
        comparer = Comparer(matrix, settings, as_of, repo.load_known(conn, sorted(wanted), settings),
                            supports=group_supports(matrix, chain_groups, stores), change_rate=rates.get(chain))
        for key in sorted(chain_groups):
            report = check_group(chain_groups[key], stores, comparer)
            decisions.extend(report.decisions)
            counts["checked"] += report.checked
            counts["stale_anchors"] += report.stale_anchor
            counts["inconclusive"] += report.inconclusive
        counts["compared"] += len(comparer.computed)
        counts["reused"] += comparer.reused
        computed.update(comparer.signed_results())
    # the members' scraped rows are read before the decisions (which may deduplicate them), and compared
    # after, with what the run serves: the decisions and the measurement commit together
    measuring = not dry_run and bool(busy)
    reading = verification.read_served_checks(conn, run_id, [
        (m, key, groups[key].anchor, stores[m].verified_at) for key, due in busy.items() for m in due
    ]) if measuring else None
    with conn.transaction():
        counts.update(_write(conn, decisions, groups, computed, as_of, run_id, settings, dry_run, deduplicate))
        measured = verification.record_served_checks(conn, run_id, as_of, reading) if reading else {}
    if measuring:
        counts["served_checked"] = sum(c for c, _ in measured.values())
        counts["served_wrong"] = sum(w for _, w in measured.values())
    return counts


def _keys_by_chain(groups: dict[int, GroupState], keys) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for key in keys:
        out.setdefault(groups[key].chain, []).append(key)
    return out


def candidate_pairs(
    conn: psycopg.Connection, as_of: datetime, settings: Settings, chains: Sequence[str] | None = None,
    run_id: str | None = None,
) -> list[tuple[int, int]]:
    """Anchor store pairs worth comparing (blocking), within each chain, smaller id first."""
    groups, stores = repo.load_states(conn, chain_ids(conn, chains))
    pairs: list[tuple[int, int]] = []
    for chain, chain_groups in _by_chain(groups).items():
        comparer = _chain_comparer(conn, chain, chain_groups, stores, as_of, settings, known=False, run_id=run_id)
        ready = [g.anchor for g in chain_groups if anchor_ready(g, stores, comparer)]
        supported = any(a in comparer.supports for a in ready)
        pairs.extend(_block(comparer.matrix, ready, settings, supported, comparer.change_rate))
    return sorted(pairs)


def compare_pairs(
    conn: psycopg.Connection,
    pairs: Sequence[tuple[int, int]],
    as_of: datetime,
    run_id: str | None,
    settings: Settings,
) -> dict[str, int]:
    """Compare anchor pairs and record the results (no group changes), for re-use by merge_groups.

    The pairs' groups are loaded whole, so each comparison weighs the same
    evidence (and has the same signatures) as in merge_groups.
    """
    all_groups, stores = repo.load_states(conn)
    group_of = {s: st.group for s, st in stores.items()}
    outcomes = {o: 0 for o in Outcome}
    computed: dict = {}
    reused = 0
    by_chain: dict[int, list[tuple[int, int]]] = {}
    for a, b in sorted(pairs):
        if a in group_of and b in group_of:
            by_chain.setdefault(all_groups[group_of[a]].chain, []).append((a, b))
    rates = repo.run_change_rates(conn, run_id, sorted(by_chain), settings) if by_chain else {}
    for chain, chain_pairs in sorted(by_chain.items()):
        involved = {group_of[s]: all_groups[group_of[s]] for pair in chain_pairs for s in pair}
        wanted = {s for g in involved.values() for s in (g.anchor, *g.members)}
        matrix = repo.load_matrix(conn, stores, wanted, observed_for=_backed_anchors(involved.values()))
        comparer = Comparer(matrix, settings, as_of, repo.load_known(conn, sorted(wanted), settings),
                            supports=group_supports(matrix, involved, stores),
                            change_rate=rates.get(chain))
        for a, b in chain_pairs:
            outcomes[comparer.compare(a, b, examples=False).outcome] += 1
        computed.update(comparer.signed_results())
        reused += comparer.reused
    with conn.transaction():
        recorded = repo.record_comparisons(conn, computed, run_id, as_of, settings)
    return {"pairs": len(pairs), "compared": recorded, "reused": reused,
            **{o.value: n for o, n in outcomes.items()}}


def merge_groups(
    conn: psycopg.Connection,
    as_of: datetime,
    run_id: str | None,
    settings: Settings,
    chains: Sequence[str] | None = None,
    dry_run: bool = False,
    deduplicate: bool = True,
) -> dict[str, int]:
    """Inter-group comparison and merging, one chain at a time (one transaction per chain).

    Deterministic: the merge pass depends only on comparison outcomes and group
    ranks. Comparisons already recorded (by compare_pairs or earlier runs) on
    unchanged prices are re-used.
    """
    groups, stores = repo.load_states(conn, chain_ids(conn, chains))
    totals: dict[str, int] = {"chains": 0, "eligible": 0}
    for chain, chain_groups in sorted(_by_chain(groups).items()):
        started = time.perf_counter()
        comparer = _chain_comparer(conn, chain, chain_groups, stores, as_of, settings, known=True, run_id=run_id)
        read = time.perf_counter()
        ready = [g for g in chain_groups if anchor_ready(g, stores, comparer)]
        plan = plan_merges(ready, comparer, settings)
        decided = time.perf_counter()
        counts = _write(conn, plan.merges, groups, comparer.signed_results(), as_of, run_id, settings, dry_run,
                        deduplicate)
        counts.update({"compared": len(comparer.computed), "reused": comparer.reused})
        log.info(
            "chain %s: %d anchors, %d merges; read %.1f s (%d prices), decide %.1f s, write %.1f s",
            chain, len(chain_groups), len(plan.merges), read - started, int(comparer.matrix.sizes.sum()),
            decided - read, time.perf_counter() - decided,
        )
        counts["eligible"] = plan.eligible
        counts["chains"] = 1
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    return totals


def deduplicate_members(
    conn: psycopg.Connection,
    as_of: datetime,
    settings: Settings,
    chains: Sequence[str] | None = None,
    batch_stores: int = 200,
    since: datetime | None = None,
) -> dict[str, int]:
    """Drop members' price rows equal to their anchor's, in batches of stores (one transaction each).

    Only members verified since their last scrape (within the window) qualify:
    a member re-scraped but not yet checked keeps its full catalogue for the
    health check. Idempotent. Used after health_check_groups / merge_groups ran
    with deduplicate=False, so the decisions commit fast and this bulk delete
    runs as its own task. `since` narrows it to members verified at or after
    that time (the DAG passes its logical date: a re-run of a date that
    re-scraped a verified member takes its rows back to overrides).
    """
    with conn.transaction():
        rows = conn.execute(
        """SELECT s.store_id, g.anchor_store_id FROM stores s JOIN store_groups g ON g.group_id = s.group_id
           WHERE s.store_id <> g.anchor_store_id AND s.last_verified_at >= %s
             AND (s.last_scraped_at IS NULL OR s.last_verified_at >= s.last_scraped_at)
             AND (%s::int[] IS NULL OR g.chain_id = ANY(%s))
           ORDER BY s.store_id""",
        (since or settings.current_since(as_of), *(chain_ids(conn, chains),) * 2),
        ).fetchall()
    deleted = 0
    for start in range(0, len(rows), batch_stores):
        with conn.transaction():
            deleted += sum(repo.deduplicate(conn, rows[start:start + batch_stores]).values())
    return {"members": len(rows), "deduplicated": deleted}


def _by_chain(groups: dict[int, GroupState]) -> dict[int, list[GroupState]]:
    out: dict[int, list[GroupState]] = {}
    for g in groups.values():
        out.setdefault(g.chain, []).append(g)
    return out


def _chain_comparer(conn, chain: int, chain_groups: list[GroupState], stores, as_of, settings, known: bool,
                    run_id: str | None = None) -> Comparer:
    """A comparer over one chain's groups: anchors' pricing plus members' rows, the groups' evidence."""
    wanted = sorted({s for g in chain_groups for s in (g.anchor, *g.members)})
    matrix = repo.load_matrix(conn, stores, wanted, observed_for=_backed_anchors(chain_groups))
    supports = group_supports(matrix, {g.group: g for g in chain_groups}, stores)
    anchors = sorted(g.anchor for g in chain_groups)
    rate = repo.run_change_rates(conn, run_id, [chain], settings).get(chain)
    return Comparer(matrix, settings, as_of, repo.load_known(conn, anchors, settings) if known else None,
                    supports=supports, change_rate=rate)


def _backed_anchors(groups: Iterable[GroupState]) -> set[int]:
    """Anchors whose members back their prices: the only stores whose first-seen times the support needs."""
    return {g.anchor for g in groups if g.members}


def _current_filter(as_of: datetime, settings: Settings):
    return lambda s: s.active and settings.is_current(s.scraped_at, as_of)


def _write(
    conn: psycopg.Connection,
    decisions: Sequence[Decision],
    groups: dict[int, GroupState],
    computed: dict,
    as_of: datetime,
    run_id: str | None,
    settings: Settings,
    dry_run: bool,
    deduplicate: bool = True,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in decisions:
        log.log(logging.INFO if dry_run else logging.DEBUG, "%s%s group %s store %s",
                "[dry run] " if dry_run else "", d.kind, d.group,
                 getattr(d, "store", getattr(d, "new_anchor", None)))
    if dry_run:
        counts["decisions"] = len(decisions)
        return counts
    with conn.transaction():
        counts.update(repo.apply_decisions(conn, decisions, groups, as_of, run_id, deduplicate))
        repo.record_comparisons(conn, computed, run_id, as_of, settings)
    return counts
