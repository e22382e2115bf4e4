"""Continuous verification and the pipeline's own error estimate (DESIGN.md §4 step 1, §9).

In production there is no ground truth, so every verification scrape of a
member doubles as a measurement: what the run serves that member had it not
been scraped (its anchor's prices and its overrides, as before its scrape)
against what the store really charges.

* `plan_verification` spends a per-chain budget of members EVERY run (never in
  bursts): members flagged `needs_verification` first (outside the budget),
  then a share drawn at random, seeded by the run, so the measured error is an
  unbiased sample; the rest of the budget goes to the riskiest members.
  The choice itself is the pure `choose_members`.
* `record_plan` keeps why each store was scraped (`verifications`);
  `take_baseline` saves the planned members' own rows just before the upsert
  overwrites them (`served_overrides`); after the scrape,
  `read_served_checks` reads what was scraped and `record_served_checks`
  compares it, once the run's health decisions are applied, with what would
  have been served had the member not been scraped.
* `estimate` turns per-store (checked, wrong) samples into a share with a 95%
  interval; `error_report` reads them back per chain, overall and per group.

No Airflow imports: the pipeline and the commands call these directly.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

import psycopg

from pricegroups.grouping.rules.serving import PriceRow
from pricegroups.grouping.scheduling import RECORDED
from pricegroups.grouping.served import Before, served_prices
from pricegroups.settings import Settings

REASONS = RECORDED  # why a store was scraped and verified: grouping/scheduling.py's table
CHANGE_EVENTS = ("merged", "member_ejected", "anchor_replaced")
Z95 = 1.959963984540054  # two-sided 95% normal quantile


# -- choosing members (pure) -----------------------------------------------

@dataclass(frozen=True)
class MemberRisk:
    """One active member of a chain as the choice sees it: forced or not, and its risk score."""

    store_id: int
    forced: bool = False  # stores.needs_verification: the integrity chain needs it checked now
    risk: float = 0.0  # `risk_score`; math.inf for a member never verified


def risk_score(
    days_since_verified: float | None,
    interval_days: float,
    recent_group_change: bool,
    overrides: int,
    anchor_rows: int,
    max_member_deviation: float,
) -> float:
    """How likely a member's served prices are wrong; higher is riskier.

    * never verified (`days_since_verified` None): infinite, always first;
    * else its staleness, days since its last verification /
      `verify_interval_days` (error grows with time since anyone looked; a
      member just verified is at the back of the queue, so the budget goes
      round all members), times
    * 1 + its overrides (own rows kept after its verification) / max(1,
      `max_member_deviation` x its anchor's rows), at most 1 (a member near the
      allowed share of deviations is close to leaving its group), + 1 when its
      group had a `merged`, `member_ejected` or `anchor_replaced` event within
      the interval (a group that just changed may be wrong).
    """
    if days_since_verified is None:
        return math.inf
    staleness = max(0.0, days_since_verified) / max(interval_days, 1e-9)
    weight = 1.0 + min(1.0, overrides / max(1.0, max_member_deviation * anchor_rows))
    if recent_group_change:
        weight += 1.0
    return staleness * weight


def choose_members(
    members: Sequence[MemberRisk], budget: int, random_share: float, seed: str
) -> dict[int, str]:
    """{store_id: reason} for one chain's members: forced, then random, then by risk.

    * every forced member ("forced"), whatever the budget;
    * `budget` further members: round-half-up(budget x random_share) drawn
      uniformly among the others with `random.Random(seed)` ("random": the
      unbiased sample; half-up so that a budget of one still samples), then
      the highest `risk` first, ties by store id ("risk").

    Pure and deterministic: the same members, budget and seed give the same
    choice (a re-run of a run draws the same), another seed another draw.
    """
    chosen = {m.store_id: "forced" for m in members if m.forced}
    pool = sorted((m for m in members if not m.forced), key=lambda m: m.store_id)
    budget = max(0, min(budget, len(pool)))
    drawn = min(budget, math.floor(budget * random_share + 0.5))
    rng = random.Random(seed)
    picked = rng.sample(pool, drawn) if drawn else []
    for m in picked:
        chosen[m.store_id] = "random"
    rest = sorted((m for m in pool if m.store_id not in chosen), key=lambda m: (-m.risk, m.store_id))
    for m in rest[: budget - drawn]:
        chosen[m.store_id] = "risk"
    return chosen


# -- planning (reads PostgreSQL) ---------------------------------------------

_CANDIDATES = """
WITH st AS (
    SELECT s.store_id, s.chain_id, s.group_id, g.anchor_store_id, s.needs_verification,
           s.last_verified_at, s.last_scraped_at,
           count(*) OVER (PARTITION BY s.group_id) AS group_size
    FROM stores s JOIN store_groups g ON g.group_id = s.group_id
    WHERE s.active AND (%(chains)s::int[] IS NULL OR s.chain_id = ANY(%(chains)s))
),
anchor_rows AS (  -- anchors of groups with members only: singletons' catalogues are never counted
    SELECT a.anchor_store_id, (SELECT count(*) FROM prices p WHERE p.store_id = a.anchor_store_id) AS n
    FROM (SELECT DISTINCT anchor_store_id FROM st WHERE group_size > 1) a
),
changed AS (
    SELECT DISTINCT e.group_id FROM group_events e
    WHERE e.kind = ANY(%(kinds)s) AND e.created_at >= %(since)s AND e.created_at < %(as_of)s
      AND e.group_id IN (SELECT group_id FROM st WHERE group_size > 1)
)
SELECT st.store_id, st.chain_id, st.store_id = st.anchor_store_id AS is_anchor, st.group_size,
       st.needs_verification,
       extract(epoch FROM %(as_of)s - st.last_verified_at) / 86400.0 AS days_since,
       ch.group_id IS NOT NULL AS recent_change,
       CASE WHEN st.store_id <> st.anchor_store_id AND st.last_verified_at IS NOT NULL
                 AND (st.last_scraped_at IS NULL OR st.last_scraped_at <= st.last_verified_at)
            THEN (SELECT count(*) FROM prices p WHERE p.store_id = st.store_id) ELSE 0 END AS overrides,
       coalesce(ar.n, 0) AS anchor_rows
FROM st
LEFT JOIN anchor_rows ar ON ar.anchor_store_id = st.anchor_store_id
LEFT JOIN changed ch ON ch.group_id = st.group_id
ORDER BY st.store_id
"""


def plan_verification(
    conn: psycopg.Connection,
    as_of: datetime,
    settings: Settings,
    chain_ids: Sequence[int] | None = None,
    seed: str = "",
) -> dict[int, str]:
    """{store_id: reason} of the members to scrape this run for verification, per chain.

    A chain whose active stores are all still alone is bootstrapping: every
    store is returned with reason "bootstrap". Otherwise the chain spends a
    budget of ceil(`verify_budget_share` x its active members) every run (no
    "due" gate: a budget spent only when members fall due comes in bursts and
    leaves the other days unmeasured), chosen by `choose_members` with the
    seed f"{seed}/{chain_id}" (the pipeline passes the logical date's ISO
    string, so a re-run draws the same). Risk: see `risk_score`.
    Anchors are not returned (the plan scrapes every anchor anyway).
    """
    rows = conn.execute(
        _CANDIDATES,
        {
            "chains": list(chain_ids) if chain_ids is not None else None,
            "kinds": list(CHANGE_EVENTS),
            "as_of": as_of,
            "since": as_of - timedelta(days=settings.verify_interval_days),
        },
    ).fetchall()
    by_chain: dict[int, list[tuple]] = {}
    for row in rows:
        by_chain.setdefault(row[1], []).append(row)
    chosen: dict[int, str] = {}
    for chain_id, chain_rows in sorted(by_chain.items()):
        if all(r[3] == 1 for r in chain_rows):
            chosen.update({r[0]: "bootstrap" for r in chain_rows})
            continue
        members = [
            MemberRisk(
                store_id=store_id,
                forced=forced,
                risk=risk_score(
                    None if days is None else float(days), settings.verify_interval_days, recent,
                    overrides, anchor_rows, settings.max_member_deviation,
                ),
            )
            for store_id, _, is_anchor, _, forced, days, recent, overrides, anchor_rows in chain_rows
            if not is_anchor
        ]
        budget = math.ceil(settings.verify_budget_share * len(members))
        chosen.update(choose_members(members, budget, settings.verify_random_share, f"{seed}/{chain_id}"))
    return chosen


def record_plan(conn: psycopg.Connection, run_id: str, as_of: datetime, reasons: dict[int, str]) -> int:
    """Keep why each planned store is scraped (`verifications`); returns rows inserted.

    ON CONFLICT DO NOTHING: a re-run of the plan keeps the first draw, so the
    measurement of a run never mixes two draws. The caller commits.
    """
    if not reasons:
        return 0
    bad = set(reasons.values()) - set(REASONS)
    if bad:
        raise ValueError(f"unknown verification reason(s): {sorted(bad)}")
    ids = sorted(reasons)
    cur = conn.execute(
        """INSERT INTO verifications (run_id, store_id, chain_id, reason, planned_at, scraped_before)
           SELECT %s, s.store_id, s.chain_id, r.reason, %s, s.last_scraped_at
           FROM unnest(%s::int[], %s::text[]) AS r(store_id, reason) JOIN stores s USING (store_id)
           ORDER BY s.store_id
           ON CONFLICT (run_id, store_id) DO NOTHING""",
        (run_id, as_of, ids, [reasons[i] for i in ids]),
    )
    return cur.rowcount


# -- measuring what was served ------------------------------------------------

_BASELINE = """
WITH taking AS (
    UPDATE verifications v SET baseline_taken = true
    FROM stores s JOIN store_groups g ON g.group_id = s.group_id
    WHERE v.run_id = %(run)s AND NOT v.baseline_taken
      AND (%(stores)s::int[] IS NULL OR v.store_id = ANY(%(stores)s::int[]))
      AND s.store_id = v.store_id AND s.store_id <> g.anchor_store_id
    RETURNING v.store_id
),
copied AS (
    INSERT INTO served_overrides (run_id, store_id, product_id, price, on_special, scraped_at)
    SELECT %(run)s, p.store_id, p.product_id, p.price, p.on_special, p.scraped_at
    FROM prices p JOIN taking t ON t.store_id = p.store_id
    ON CONFLICT (run_id, store_id, product_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM taking), (SELECT count(*) FROM copied)
"""


def take_baseline(
    conn: psycopg.Connection, run_id: str, store_ids: Sequence[int] | None = None
) -> dict[str, int]:
    """Save the planned members' own price rows before this run's upsert overwrites them.

    These rows are what was being served as each member's overrides (or, for a
    member never verified, its observed prices). Only stores that are members
    now are taken (an anchor's own prices are what is served for it, nothing
    to measure). `baseline_taken` guards a retried upsert from taking a second
    baseline after the first upsert committed. Runs in the caller's
    transaction, which must also hold the upsert.
    """
    members, rows = conn.execute(
        _BASELINE, {"run": run_id, "stores": sorted(set(store_ids)) if store_ids is not None else None}
    ).fetchone()
    return {"baseline_members": members, "baseline_rows": rows}


# What would be served for each member had it not been scraped this run, against what it charges: the
# served-prices rule itself (grouping/served.py, rules/serving.py) applied to the member as it was before its
# scrape (its baseline rows, its previous scrape and verification), in the group it was checked in as the
# run's health decisions left it. A member whose scrape failed this run (last_scraped_at before the plan)
# or whose measurement is already recorded is skipped. Rows the member's own scrape this run found missing
# (listing_absences) are not charged prices any more and are not checked.
_READY = """
SELECT c.store_id, c.group_id, c.anchor_id, c.verified_at, v.scraped_before
FROM unnest(%(stores)s::int[], %(groups)s::bigint[], %(anchors)s::int[], %(verified)s::timestamptz[])
     AS c(store_id, group_id, anchor_id, verified_at)
JOIN verifications v ON v.run_id = %(run)s AND v.store_id = c.store_id AND v.baseline_taken AND v.checked IS NULL
JOIN stores s ON s.store_id = c.store_id AND s.last_scraped_at >= v.planned_at
ORDER BY c.store_id
"""
# Per member: what it charges now (`charged`) and, from the baseline, what it had before its scrape.
_ROWS = """
SELECT 'charged', p.store_id, p.product_id, (p.price * 100)::bigint, p.on_special, p.scraped_at
FROM prices p
WHERE p.store_id = ANY(%(stores)s)
  AND NOT EXISTS (SELECT 1 FROM listing_absences la WHERE la.store_id = p.store_id AND la.product_id = p.product_id)
UNION ALL
SELECT 'baseline', o.store_id, o.product_id, (o.price * 100)::bigint, o.on_special, o.scraped_at
FROM served_overrides o
WHERE o.run_id = %(run)s AND o.store_id = ANY(%(stores)s)
"""
_RECORD = """
UPDATE verifications v
SET group_id = c.group_id, anchor_store_id = c.anchor_id, checked = c.checked, wrong = c.wrong,
    measured_at = %(as_of)s
FROM unnest(%(stores)s::int[], %(groups)s::bigint[], %(anchors)s::int[], %(checked)s::int[], %(wrong)s::int[])
     AS c(store_id, group_id, anchor_id, checked, wrong)
WHERE v.run_id = %(run)s AND v.store_id = c.store_id
"""


@dataclass(frozen=True)
class Reading:
    """What a run's measurement reads before the health decisions: per member, where it was checked, its rows.

    `checked_in`: {member: (group_id, anchor store_id, last_verified_at before this run, last scrape before)};
    `charged`: {member: {product: cents}} as just scraped; `baseline`: its own rows before the scrape.
    """

    checked_in: dict[int, tuple[int, int, datetime | None, datetime | None]]
    charged: dict[int, dict[int, int]]
    baseline: dict[int, dict[int, PriceRow]]


def read_served_checks(
    conn: psycopg.Connection, run_id: str, checks: Sequence[tuple[int, int, int, datetime | None]],
) -> Reading:
    """Read, before the run's health decisions and deduplication, what `record_served_checks` compares.

    Each check is (member store_id, group_id, anchor store_id, the member's
    last_verified_at before this run's decision); the member's rows must still
    be its full catalogue just scraped. Members without a baseline this run,
    whose scrape failed, or already measured, are left out (the first
    measurement of a run stands). Two statements for any number of members.
    """
    if not checks:
        return Reading({}, {}, {})
    stores, groups, anchors, verified = (list(c) for c in zip(*checks))
    ready = conn.execute(
        _READY, {"run": run_id, "stores": stores, "groups": groups, "anchors": anchors, "verified": verified}
    ).fetchall()
    checked_in = {store: (group, anchor, verified_at, scraped)
                  for store, group, anchor, verified_at, scraped in ready}
    charged: dict[int, dict[int, int]] = {store: {} for store in checked_in}
    baseline: dict[int, dict[int, PriceRow]] = {store: {} for store in checked_in}
    if checked_in:
        for kind, store, product, cents, special, seen in conn.execute(
                _ROWS, {"run": run_id, "stores": list(checked_in)}):
            if kind == "charged":
                charged[store][product] = int(cents)
            else:
                baseline[store][product] = PriceRow(int(cents), 0, special, seen)
    return Reading(checked_in, charged, baseline)


def record_served_checks(
    conn: psycopg.Connection, run_id: str, as_of: datetime, reading: Reading,
) -> dict[int, tuple[int, int]]:
    """Record, per member read, prices checked and wrong; returns {store_id: (checked, wrong)}.

    checked = the member's current products with a served price; wrong = those
    whose served price differs from the price just scraped (price only). What
    is served is the served-prices rule as the site applies it
    (`served.served_prices`, late stores and group-mates' fresher rows
    included), for the member as it was before its scrape, in the group it
    was checked in *as the run's health decisions left it*: a run that
    replaced a moved anchor serves the group's members from the new one, and
    the estimate is of what the run serves, not of what it found and put
    right. A member the decisions ejected is measured in its old group (had
    it not been scraped it would still be there); a member the decisions made
    its group's anchor, against the anchor it had. Call it after the
    decisions (or right after `read_served_checks` when there are none).
    """
    if not reading.checked_in:
        return {}
    ids = sorted(reading.checked_in)
    groups = sorted({reading.checked_in[s][0] for s in ids})
    now = dict(conn.execute(
        "SELECT group_id, anchor_store_id FROM store_groups WHERE group_id = ANY(%s)", (groups,)).fetchall())
    placed: dict[int, tuple[int, int]] = {}
    for store in ids:
        group, anchor_then = reading.checked_in[store][:2]
        anchor_now = now.get(group)
        placed[store] = (group, anchor_then if anchor_now in (None, store) else anchor_now)
    before = {store: Before(scraped, verified_at, reading.baseline[store], *placed[store])
              for store, (_, _, verified_at, scraped) in reading.checked_in.items()}
    served = served_prices(conn, {store: list(reading.charged[store]) for store in ids}, before=before)
    counts = {store: [0, 0] for store in ids}
    for store in ids:
        for product, cents in reading.charged[store].items():
            s = served.get(store, {}).get(product)
            if s is not None:
                counts[store][0] += 1
                counts[store][1] += s.price != cents
    conn.execute(_RECORD, {
        "run": run_id, "as_of": as_of, "stores": ids, "groups": [placed[s][0] for s in ids],
        "anchors": [placed[s][1] for s in ids], "checked": [counts[s][0] for s in ids],
        "wrong": [counts[s][1] for s in ids]})
    return {s: (counts[s][0], counts[s][1]) for s in ids}


def measure_served(
    conn: psycopg.Connection,
    run_id: str,
    as_of: datetime,
    checks: Sequence[tuple[int, int, int, datetime | None]],
) -> dict[int, tuple[int, int]]:
    """`read_served_checks` then `record_served_checks` with no decision between them (see both)."""
    return record_served_checks(conn, run_id, as_of, read_served_checks(conn, run_id, checks))


# -- estimating (pure) --------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """Share of served prices that were wrong, with a 95% interval, from `stores` verified stores."""

    share: float
    low: float
    high: float
    stores: int
    checked: int
    wrong: int
    unverified_share: float = 1.0  # of the served prices, those at members no check reached (`served_share`)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def estimate(samples: Sequence[tuple[int, int]]) -> Estimate:
    """Ratio estimator over per-store (checked, wrong) samples with a 95% cluster interval.

    share r = sum(wrong) / sum(checked). The prices of one store are not
    independent (a store in the wrong group is wrong on many at once), so the
    variance is over stores (clusters):
    var = n/(n-1) x sum((w_i - r c_i)^2) / (sum c)^2, interval r +- 1.96 sqrt(var)
    clipped to [0, 1]. Degenerate cases:

    * no prices checked: share 0.0, interval (0, 1) — nothing is known;
    * fewer than 2 samples: interval (0, 1) — a spread between stores cannot
      be estimated from one store, so no bound is claimed;
    * nothing wrong in any sample (variance 0): the upper bound is at least
      1 - 0.05^(1/checked) (the exact one-sided 95% bound for zero events,
      ~3/checked), never a zero-width interval at 0.
    """
    n = len(samples)
    checked = sum(c for c, _ in samples)
    wrong = sum(w for _, w in samples)
    if checked <= 0:
        return Estimate(0.0, 0.0, 1.0, n, checked, wrong)
    share = wrong / checked
    if n < 2:
        return Estimate(share, 0.0, 1.0, n, checked, wrong)
    var = n / (n - 1) * sum((w - share * c) ** 2 for c, w in samples) / checked**2
    half = Z95 * math.sqrt(var)
    low, high = max(0.0, share - half), min(1.0, share + half)
    if wrong == 0:
        high = max(high, 1.0 - 0.05 ** (1.0 / checked))
    return Estimate(share, low, high, n, checked, wrong)


def served_share(draws: Estimate, verified_prices: int, unverified_prices: int) -> Estimate:
    """The wrong share of what the runs serve: the draws' share times the share of prices no check reached.

    `draws` is `estimate` over the random draws: what a member is served had
    no check of its run reached it. The runs serve the members they verified
    their own prices (right by construction) and the rest what the draws
    measured, so the wrong share served is the draws' share x
    unverified / (verified + unverified) prices, its interval scaled alike.
    With uniform draws this is unbiased, and the runs' targeted scrapes (the
    riskiest first) leave members no worse than the draws. But the typical
    reading is low where wrong prices gather in a few members that no draw
    reached for long (their own rows age): a chain whose budget is one draw a
    run, with no risk picks to bound that age (docs/verification.md). With
    nothing recorded the draws' share stands.
    """
    total = verified_prices + unverified_prices
    f = unverified_prices / total if total > 0 else 1.0
    return Estimate(draws.share * f, draws.low * f, draws.high * f, draws.stores, draws.checked, draws.wrong,
                    unverified_share=f)


# Per chain, the run's active members after its decisions: those it verified (scraped in full by this run,
# for whatever reason: a bootstrap run scrapes them all) and the rest, each weighted by its anchor's rows
# (what it is served).
_MEMBERS = """
WITH member AS (
    SELECT s.store_id, s.chain_id, g.anchor_store_id,
           EXISTS (SELECT 1 FROM scrape_log l WHERE l.run_id = %(run)s AND l.store_id = s.store_id
                     AND l.status = 'ok') AS verified
    FROM stores s JOIN store_groups g ON g.group_id = s.group_id
    WHERE s.active AND s.store_id <> g.anchor_store_id
      AND (%(chains)s::int[] IS NULL OR s.chain_id = ANY(%(chains)s))
),
anchor_rows AS MATERIALIZED (  -- each anchor's rows counted once, not once per member
    SELECT a.anchor_store_id, (SELECT count(*) FROM prices p WHERE p.store_id = a.anchor_store_id) AS n
    FROM (SELECT DISTINCT anchor_store_id FROM member) a
)
INSERT INTO verified_members (run_id, chain_id, measured_at, verified, unverified, verified_prices,
                              unverified_prices)
SELECT %(run)s, m.chain_id, %(as_of)s,
       count(*) FILTER (WHERE m.verified), count(*) FILTER (WHERE NOT m.verified),
       coalesce(sum(a.n) FILTER (WHERE m.verified), 0), coalesce(sum(a.n) FILTER (WHERE NOT m.verified), 0)
FROM member m JOIN anchor_rows a USING (anchor_store_id)
GROUP BY m.chain_id
ON CONFLICT (run_id, chain_id) DO UPDATE SET
    measured_at = EXCLUDED.measured_at, verified = EXCLUDED.verified, unverified = EXCLUDED.unverified,
    verified_prices = EXCLUDED.verified_prices, unverified_prices = EXCLUDED.unverified_prices
"""


def record_verified_members(
    conn: psycopg.Connection, run_id: str, as_of: datetime, chain_ids: Sequence[int] | None = None,
) -> int:
    """Record, per chain, the members this run verified and the rest (`verified_members`); returns chains.

    Called once a run's decisions are made (the run summary): what it leaves
    served is what `served_share` weighs. A retried call recounts. One
    statement for any number of stores. The caller commits.
    """
    return conn.execute(_MEMBERS, {"run": run_id, "as_of": as_of,
                                   "chains": list(chain_ids) if chain_ids is not None else None}).rowcount


# -- reading the measurements -------------------------------------------------

_MEASURED = """
SELECT c.code, v.reason, v.checked, v.wrong
FROM verifications v JOIN chains c ON c.chain_id = v.chain_id
WHERE v.checked > 0
  AND (%(chains)s::int[] IS NULL OR v.chain_id = ANY(%(chains)s))
  AND (%(since)s::timestamptz IS NULL OR v.measured_at > %(since)s)
  AND (%(until)s::timestamptz IS NULL OR v.measured_at <= %(until)s)
ORDER BY c.code, v.run_id, v.store_id
"""
_WEIGHTS = """
SELECT c.code, sum(m.verified_prices), sum(m.unverified_prices)
FROM verified_members m JOIN chains c ON c.chain_id = m.chain_id
WHERE (%(chains)s::int[] IS NULL OR m.chain_id = ANY(%(chains)s))
  AND (%(since)s::timestamptz IS NULL OR m.measured_at > %(since)s)
  AND (%(until)s::timestamptz IS NULL OR m.measured_at <= %(until)s)
GROUP BY c.code
"""


def estimates(
    conn: psycopg.Connection,
    chain_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """{"served" | "random" | "all": {"overall": Estimate, "chains": {code: Estimate}}} over (since, until].

    "random" is the draws' share: what a member is served had no check reached
    it (the unbiased sample); "served" weighs it by the prices the runs left
    unverified (`served_share`): the wrong share of what the runs serve, the
    headline; "all" is what every check found, whatever its reason. Only
    measurements with something checked count. Two statements.
    """
    params = {"chains": list(chain_ids) if chain_ids is not None else None, "since": since, "until": until}
    rows = conn.execute(_MEASURED, params).fetchall()
    weights = {code: (int(v), int(u)) for code, v, u in conn.execute(_WEIGHTS, params)}
    found: dict[str, dict[str, Any]] = {}
    for label, keep in (("random", lambda reason: reason == "random"), ("all", lambda reason: True)):
        chains: dict[str, list[tuple[int, int]]] = {}
        for code, reason, checked, wrong in rows:
            if keep(reason):
                chains.setdefault(code, []).append((checked, wrong))
        found[label] = {"overall": estimate([s for samples in chains.values() for s in samples]),
                        "chains": {code: estimate(samples) for code, samples in sorted(chains.items())}}
    every = (sum(v for v, _ in weights.values()), sum(u for _, u in weights.values()))
    found["served"] = {
        "overall": served_share(found["random"]["overall"], *every),
        "chains": {code: served_share(e, *weights.get(code, (0, 0)))
                   for code, e in found["random"]["chains"].items()},
    }
    return found


def error_report(
    conn: psycopg.Connection,
    chain_ids: Sequence[int] | None = None,
    since: datetime | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """`estimates` as dicts, and with `run_id` that run's measurements per group.

    {"served" | "random" | "all": {"overall": est, "chains": {code: est}},
     "groups": {group_id: {"stores", "checked", "wrong"}} (this run's, with run_id)}
    where est is `Estimate.as_dict()` (samples = stores, checked, wrong, share, low,
    high, unverified_share). Measured after `since` when given (so
    `since = as_of - 14 days` is the 14 runs of a daily schedule).
    """
    report: dict[str, Any] = {
        label: {"overall": _est(found["overall"]), "chains": {c: _est(e) for c, e in found["chains"].items()}}
        for label, found in estimates(conn, chain_ids, since).items()
    }
    if run_id is not None:
        groups = conn.execute(
            """SELECT group_id, count(*), sum(checked), sum(wrong) FROM verifications
               WHERE run_id = %(run)s AND checked IS NOT NULL
                 AND (%(chains)s::int[] IS NULL OR chain_id = ANY(%(chains)s))
               GROUP BY group_id ORDER BY group_id""",
            {"run": run_id, "chains": list(chain_ids) if chain_ids is not None else None},
        ).fetchall()
        report["groups"] = {
            str(g): {"stores": n, "checked": int(c), "wrong": int(w)} for g, n, c, w in groups
        }
    return report


def _est(e: Estimate) -> dict[str, Any]:
    d = e.as_dict()
    d["samples"] = d.pop("stores")
    return d


def format_estimate(e: Estimate | dict[str, Any]) -> str:
    """'0.12% wrong (95% CI 0.05%-0.30%) from 40 stores, 9,000 prices' for logs and the CLI."""
    d = e.as_dict() if isinstance(e, Estimate) else e
    stores = d.get("stores", d.get("samples", 0))
    if not d["checked"]:
        return "no verification measured yet"
    text = (f"{100 * d['share']:.2f}% wrong (95% CI {100 * d['low']:.2f}%-{100 * d['high']:.2f}%) "
            f"from {stores} store(s), {d['checked']:,} price(s)")
    if d.get("unverified_share", 1.0) < 1.0:
        text += f", {100 * d['unverified_share']:.0f}% of the prices served unverified by their run"
    return text
