"""Spot checks (DESIGN.md §9; docs/verification.md "Spot checks"): one page of every member, every run.

The verification budget scrapes a few members in full each run, so a member
that moved to another zone is served its old group's list until its turn
comes: in the demo, days. A spot check reads the first catalogue page of each
member that is not scraped anyway (scrape/spot.py) and compares it, after the
anchors' prices of the run are in, with what is served for the member. Zones
differ on a large share of products, so a moved member disagrees on several
products of any page; a member still in its zone disagrees only where a price
has just changed (timing: a late store, or a scrape that caught a change
half-way). A member whose unexplained disagreements reach the threshold is a
*suspect*: it is scraped in full in the same run (verification reason
"spot"), and the health check then decides with the whole catalogue as
evidence. Differences that several members of a group share are the
anchor's; when there are enough of them, two of those members are scraped
too, so that the health check can re-elect the anchor (`anchor_witnesses`).
A spot check itself never changes a group.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Collection, Hashable, Iterable, Mapping, NamedTuple, Sequence

import psycopg

from pricegroups.grouping.pricing import sort_key
from pricegroups.grouping.rules.cadence import DAILY, Cadence
from pricegroups.grouping.rules.serving import recent_change
from pricegroups.grouping.served import served_prices
from pricegroups.settings import Settings

EXAMPLES = 10


class SpotPrice(NamedTuple):
    """One product of a spot-checked page: the price seen, the price served and when that was first observed.

    `source_first_scraped`: the first scrape of the store whose row is served; a
    price observed then was not a change (the effective-prices rule's test).
    """

    sku: str
    seen: tuple[Decimal, Decimal | None, bool]
    served: tuple[Decimal, Decimal | None, bool]
    served_since: datetime | None
    source: str
    source_first_scraped: datetime | None = None


@dataclass(frozen=True)
class SpotVerdict:
    """What one member's page said against what is served for it."""

    compared: int
    mismatched: int
    timing: int
    suspect: bool
    examples: list[dict] = field(default_factory=list)
    shared: int = 0  # differences other members of its group show too: the anchor's, not this store's
    repeated: int = 0  # differences its previous check showed too: neither a glitch nor timing


def shared_differences(
    pages: Mapping[Hashable, Sequence[SpotPrice]], checked_at: datetime, horizon: timedelta = DAILY.horizon,
) -> set[tuple[str, tuple]]:
    """(sku, price seen) that two or more of the pages show against what is served, timing aside.

    The pages are one group's members. A price several members charge and the
    anchor does not is the anchor's deviation (a late anchor, its own price),
    not a sign that each of them moved: DESIGN.md §5's shared-vs-own rule.
    """
    seen: dict[tuple[str, tuple], int] = {}
    for prices in pages.values():
        for p in prices:
            if p.seen != p.served and not _timing(p, checked_at - horizon):
                seen[(p.sku, p.seen)] = seen.get((p.sku, p.seen), 0) + 1
    return {key for key, n in seen.items() if n >= 2}


def anchor_witnesses(
    pages: Mapping[Hashable, Sequence[SpotPrice]], shared: Collection[tuple[str, tuple]], settings: Settings,
    exclude: Collection[Hashable] = (),
) -> list[Hashable]:
    """Two members to scrape in full when their group's pages say the anchor is off, else none.

    Differences several members share are the anchor's (a store late with
    price changes, or with prices of its own). From `spot_check_min_mismatches`
    of them on, the two members that show most of them are verified in the
    same run: with the anchor and two matching members the health check has a
    consensus, and `rules/anchors.elect_anchor` hands the role to a member that is
    closer to it. Members in `exclude` (already suspects) do not count.
    """
    if len(shared) < settings.spot_check_min_mismatches:
        return []
    showing = {
        store: sum(1 for p in prices if (p.sku, p.seen) in shared)
        for store, prices in pages.items() if store not in exclude
    }
    ranked = sorted((store for store, n in showing.items() if n), key=lambda s: (-showing[s], sort_key(s)))
    return ranked[:2]


def judge(
    prices: Iterable[SpotPrice], checked_at: datetime, settings: Settings,
    shared: Collection[tuple[str, tuple]] = frozenset(),
    before: Collection[tuple[str, str]] = frozenset(),
) -> SpotVerdict:
    """Suspect when the page disagrees with the served prices on more than timing explains.

    A difference is timing when the served price is a recent change
    (`serving.recent_change`: first observed after its store's first scrape,
    within the cadence's horizon before the check, 48 hours at a daily
    cadence): the store may not have applied it yet, or the scrape caught it
    half-way. A
    difference in `shared` (`shared_differences`) is the anchor's. The rest must
    stay below max(`spot_check_min_mismatches`, ceil(`max_member_deviation` x
    compared)): a member in its zone differs only by its overrides, which are served.
    A single difference is enough when the member's previous check since its
    last verification showed it too (`before`: (sku, price seen) as recorded
    in its examples): a one-off glitch does not repeat, and timing passes
    within the horizon, so a price the store keeps charging against what is
    served is its own or another zone's, and only a full scrape tells which.
    A page shows the same products run after run, so a store that moved to a
    zone whose list differs on less than a page's threshold is found this way.
    """
    since = checked_at - Cadence.of_hours(settings.run_interval_hours).horizon
    compared = mismatched = timing = common = repeated = 0
    examples: list[dict] = []
    for p in prices:
        compared += 1
        if p.seen == p.served:
            continue
        if _timing(p, since):
            timing += 1
            continue
        if (p.sku, p.seen) in shared:
            common += 1
            continue
        mismatched += 1
        repeated += (p.sku, str(p.seen[0])) in before
        if len(examples) < EXAMPLES:
            examples.append({"sku": p.sku, "seen": str(p.seen[0]), "served": str(p.served[0]), "source": p.source})
    threshold = max(settings.spot_check_min_mismatches, math.ceil(settings.max_member_deviation * compared))
    suspect = compared > 0 and (mismatched >= threshold or repeated > 0)
    return SpotVerdict(compared, mismatched, timing, suspect, examples, common, repeated)


def _timing(p: SpotPrice, since: datetime) -> bool:
    """The served price is a change seen at or after `since` (rules/serving.recent_change): a difference may be timing."""
    return p.served_since is not None and recent_change(p.served_since, p.source_first_scraped, since)


# -- reading and writing PostgreSQL -------------------------------------------

_MEMBERS = """
SELECT c.code, s.store_id
FROM stores s
JOIN store_groups g ON g.group_id = s.group_id
JOIN chains c ON c.chain_id = s.chain_id
WHERE s.active AND s.store_id <> g.anchor_store_id
  AND (%(chains)s::text[] IS NULL OR c.code = ANY(%(chains)s))
  AND NOT s.store_id = ANY(%(planned)s)
ORDER BY c.code, s.store_id
"""

# The run's spot-checked pages, each item with its product: one statement for every member checked.
_PAGES = """
SELECT k.store_id, k.checked_at, s.group_id, i.sku, l.product_id, i.price, i.was_price, i.on_special
FROM spot_checks k
JOIN stores s ON s.store_id = k.store_id
LEFT JOIN spot_check_items i ON i.run_id = k.run_id AND i.store_id = k.store_id
LEFT JOIN listings l ON l.chain_id = s.chain_id AND l.sku = i.sku
WHERE k.run_id = %s AND k.error IS NULL
ORDER BY k.store_id, i.sku
"""


# Each of the run's spot-checked members' differences at its previous check, when that check came after its
# last verification (a verification since judged its whole catalogue): the examples recorded with the verdict,
# every difference of a member that was not a suspect (fewer than the threshold, at most EXAMPLES).
_BEFORE = """
WITH previous AS (
    SELECT DISTINCT ON (k.store_id) k.store_id, k.evidence
    FROM spot_checks now
    JOIN stores s ON s.store_id = now.store_id
    JOIN spot_checks k ON k.store_id = now.store_id AND k.checked_at < now.checked_at AND k.error IS NULL
                      AND k.evidence IS NOT NULL
                      AND (s.last_verified_at IS NULL OR k.checked_at > s.last_verified_at)
    WHERE now.run_id = %s AND now.error IS NULL
    ORDER BY k.store_id, k.checked_at DESC
)
SELECT p.store_id, e->>'sku', e->>'seen'
FROM previous p CROSS JOIN LATERAL jsonb_array_elements(coalesce(p.evidence->'examples', '[]'::jsonb)) AS e
"""

# Every verdict of the run in one statement.
_RECORD = """
UPDATE spot_checks k SET compared = v.compared, mismatched = v.mismatched, timing = v.timing,
                         suspect = v.suspect, evidence = v.evidence::jsonb
FROM unnest(%s::int[], %s::int[], %s::int[], %s::int[], %s::bool[], %s::text[])
     AS v(store_id, compared, mismatched, timing, suspect, evidence)
WHERE k.run_id = %s AND k.store_id = v.store_id
"""


def members_to_spot_check(
    conn: psycopg.Connection, chains: Sequence[str] | None, planned: Iterable[int]
) -> dict[str, list[int]]:
    """{chain code: member store ids} of active members not planned for a scrape this run."""
    found: dict[str, list[int]] = {}
    rows = conn.execute(_MEMBERS, {"chains": list(chains) if chains else None, "planned": list(planned)})
    for chain, store_id in rows:
        found.setdefault(chain, []).append(store_id)
    return found


def judge_spot_checks(conn: psycopg.Connection, run_id: str, settings: Settings) -> list[int]:
    """Judge the run's spot checks against the prices served now; record each verdict; return the suspects.

    Called after the run's anchors are upserted, so "served" is today's list.
    A store that was also scraped in full this run (a re-run) is judged all the same.
    """
    suspects: list[int] = []
    recorded: list[tuple] = []
    before = previous_differences(conn, run_id)
    for checked_pages in read_pages(conn, run_id).values():
        pages = {store: prices for store, (_, prices) in checked_pages.items()}
        checked = {store: at for store, (at, _) in checked_pages.items()}
        shared = shared_differences(pages, max(checked.values()), Cadence.of_hours(settings.run_interval_hours).horizon)
        verdicts = {store: judge(prices, checked[store], settings, shared, before.get(store, frozenset()))
                    for store, prices in pages.items()}
        moved = [store for store, v in verdicts.items() if v.suspect]
        witnesses = anchor_witnesses(pages, shared, settings, exclude=moved)
        anchor_off = sorted({sku for sku, _ in shared})[:EXAMPLES]
        for store_id, verdict in verdicts.items():
            evidence = {"examples": verdict.examples, "shared_with_group": verdict.shared,
                        "repeated": verdict.repeated}
            if store_id in witnesses:
                evidence["anchor_off"] = anchor_off  # scraped to re-elect the anchor, not for itself
            recorded.append((store_id, verdict.compared, verdict.mismatched, verdict.timing,
                             verdict.suspect or store_id in witnesses, json.dumps(evidence)))
        suspects += moved + witnesses
    if recorded:
        with conn.transaction():
            conn.execute(_RECORD, (*(list(column) for column in zip(*sorted(recorded))), run_id))
    return sorted(suspects)


def previous_differences(conn: psycopg.Connection, run_id: str) -> dict[int, frozenset[tuple[str, str]]]:
    """{member: (sku, price seen)} of the differences shown by its previous check since its verification."""
    found: dict[int, set[tuple[str, str]]] = {}
    for store, sku, seen in conn.execute(_BEFORE, (run_id,)):
        if sku is not None:
            found.setdefault(store, set()).add((sku, seen))
    return {store: frozenset(pairs) for store, pairs in found.items()}


def read_pages(
    conn: psycopg.Connection, run_id: str
) -> dict[int, dict[int, tuple[datetime, list[SpotPrice]]]]:
    """{group: {member: (checked_at, its page against what is served)}} for the run's spot checks.

    The pages in one read, what is served for their products in three more
    (served.served_prices), whatever the number of members: the cost follows
    the pages read, not the stores.
    Items whose SKU maps to no product, or with nothing served, are left out.
    """
    rows = conn.execute(_PAGES, (run_id,)).fetchall()
    wanted: dict[int, set[int]] = {}
    for store, _, _, _, product, *_ in rows:
        products = wanted.setdefault(store, set())
        if product is not None:
            products.add(product)
    served = served_prices(conn, {s: p for s, p in wanted.items() if p})
    groups: dict[int, dict[int, tuple[datetime, list[SpotPrice]]]] = {}
    for store, checked_at, group, sku, product, price, was, special in rows:
        _, page = groups.setdefault(group, {}).setdefault(store, (checked_at, []))
        e = served.get(store, {}).get(product) if product is not None else None
        if e is None:
            continue
        page.append(SpotPrice(sku, (price, was, special), (_money(e.price), _money(e.was_price) or None, e.on_special),
                              e.since, e.source, e.source_first_scraped))
    return groups


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def spot_summary(conn: psycopg.Connection, run_id: str) -> Mapping[str, int]:
    """The run's spot checks in numbers (run summary, demo report)."""
    row = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE error IS NOT NULL), coalesce(sum(pages), 0),
                  count(*) FILTER (WHERE suspect)
           FROM spot_checks WHERE run_id = %s""",
        (run_id,),
    ).fetchone()
    return {"stores": row[0], "failed": row[1], "pages": int(row[2]), "suspects": row[3]}
