"""Benchmark: accuracy and cost of the grouping engine, against exhaustive all-pairs comparison.

The rule under test (comparer.py): a disagreement is *shared* when other
stores stand behind both prices (two lists) or a store's *own* deviation;
MATCH allows at most `max_member_deviation` (1%) of the overlap as one
store's own deviations. From all ungrouped nobody backs anybody, so every
disagreement is both stores' own: MATCH = at most 1% of the overlap differs.
Merges go to the matching sink with the fewest disagreeing products, and the
ranking puts the more representative anchor first (merging.py).

1. accuracy: synthetic chains with known zones (make_chain): lists 5-25% apart
   from the base list; near-twin lists that differ on only 1.2-1.5% of
   products (a twin of zone 1 and, with 5+ zones, a second twin pair), which
   must stay apart; independently priced stores, tiny catalogues, stale
   stores; 10% noisy stores with scattered own deviations on 0.2-0.8% of
   their products and 5% with persistent own deviations on 0.1-0.4% (each a
   price nobody else in the chain charges). One maintenance round from all
   ungrouped; adjusted Rand index against the true zones, store pairs grouped
   across zones, and the zones split or mixed.
2. engine at scale: CHAINS chains x STORES/CHAINS stores x PRODUCTS products,
   85% carried, 24 zones per chain (same generator), prices already in
   memory; one bootstrap round (its ARI is printed too, not in RESULT).
3. baseline: exhaustive all-pairs comparison on a 1,000-store subset, then the
   same merge rule on the matching pairs (match_matrix_merges: same ranking,
   nearest matching sink); same groups required; extrapolated to the full
   store count (pairs grow as n^2 per chain).
4. end to end from PostgreSQL on a database of its own (dropped afterwards):
   load the same data into `prices`, then find_stale_anchors +
   health_check_groups + merge_groups (read current prices with binary COPY,
   decide, write merges, events, comparisons and the deduplication).

Ends with: RESULT ari_min=... cross_zone_pairs=... engine_10k_s=... db_round_10k_s=...
allpairs_10k_s_est=... same_as_allpairs=... peak_rss_mib=...
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
from psycopg import sql

from pricegroups import db
from pricegroups.grouping import service
from pricegroups.grouping.book import GroupBook
from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.rules.compare import Outcome
from pricegroups.grouping.merging import match_matrix_merges
from pricegroups.grouping.model import GroupState
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.migrate import migrate
from pricegroups.settings import Settings
from pricegroups.stores import StoreInfo, ensure_chain, ensure_stores

AS_OF = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)
STALE = AS_OF - timedelta(days=5)
SETTINGS = Settings()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- synthetic chains -----------------------------------------------------------

@dataclass
class Chain:
    """One chain's stores as dense arrays plus the ground truth."""

    keys: np.ndarray  # (stores, products) int32, 0 = not carried
    fresh: np.ndarray  # bool per store: scraped within the window
    zone: np.ndarray  # true zone per store (-1 - i for an independently priced store)
    tiny: np.ndarray  # bool per store: catalogue too small to compare
    own: np.ndarray  # per store: products priced at a price nobody else in the chain charges (own deviations)
    twins: tuple[tuple[int, int], ...] = ()  # (zone, its near-twin zone)

    def head(self, n: int) -> "Chain":
        """The first n stores."""
        return Chain(self.keys[:n], self.fresh[:n], self.zone[:n], self.tiny[:n], self.own[:n], self.twins)


TWIN_SHARE = (0.012, 0.015)  # a near-twin list differs from its twin on this share of products
ZONE_SHARE = (0.05, 0.25)  # any other zone's list differs from the base list on this share
NOISY_SHARE = (0.002, 0.008)  # scattered own deviations of a noisy store, share of its products
PERSISTENT_SHARE = (0.001, 0.004)  # a store's persistent own deviations, share of its products


def make_chain(seed: int, stores: int, products: int, zones: int, carry: float = 0.85) -> Chain:
    """A chain with `zones` price lists; deterministic for a seed.

    Lists: zone 0 is the base list; zone 1 and (zones >= 3) the last zone are
    near twins, differing on exactly 1.2-1.5% of products; with zones >= 5 so
    are zone 2 and the last zone but one. Every other zone differs from the
    base list on 5-25% of products. A changed product gets +1..59 cents and a
    fresh on-special draw (3%); the base list has 3% of products on special,
    which the other lists inherit where they did not change.

    Stores (a disjoint split, by one uniform draw each): 3% independently
    priced, 1% with a tiny catalogue (20 products), 1% stale (scraped before
    the window), 10% noisy (own deviations on 0.2-0.8% of their carried
    products), 5% with persistent own deviations (0.1-0.4%), the rest priced
    exactly as their zone. An own deviation is +1..9 cents (wider only if
    needed) on a random product, at a price no list and no other store of
    the chain charges for that product. Every store carries each product with
    probability `carry`.
    """
    rng = np.random.default_rng(seed)
    base = rng.integers(100, 2000, products, dtype=np.int64) * 2 + (rng.random(products) < 0.03)
    lists = np.empty((zones, products), dtype=np.int64)
    lists[0] = base
    twins = []
    if zones >= 3:
        twins.append((1, zones - 1))
    if zones >= 5:
        twins.append((2, zones - 2))
    parent_of = {twin: zone for zone, twin in twins}
    for z in range(1, zones):
        if z in parent_of:
            parent, share = lists[parent_of[z]], rng.uniform(*TWIN_SHARE)
        else:
            parent, share = lists[0], rng.uniform(*ZONE_SHARE)
        lists[z] = parent
        changed = rng.choice(products, int(round(share * products)), replace=False)
        cents = lists[z, changed] // 2 + rng.integers(1, 60, len(changed))
        lists[z, changed] = cents * 2 + (rng.random(len(changed)) < 0.03)

    zone = rng.integers(0, zones, stores)
    kind = rng.random(stores)
    independent = kind < 0.03
    tiny = (kind >= 0.03) & (kind < 0.04)
    stale = (kind >= 0.04) & (kind < 0.05)
    noisy = (kind >= 0.05) & (kind < 0.15)
    persistent = (kind >= 0.15) & (kind < 0.20)
    keys = lists[zone]
    n_ind = int(independent.sum())
    keys[independent] = rng.integers(100, 5000, (n_ind, products)) * 2
    carried = rng.random((stores, products)) < carry
    for i in np.flatnonzero(tiny):
        carried[i] = False
        carried[i, rng.choice(products, 20, replace=False)] = True
    keys = np.where(carried, keys, 0).astype(np.int32)

    share = np.zeros(stores)
    share[noisy] = rng.uniform(*NOISY_SHARE, int(noisy.sum()))
    share[persistent] = rng.uniform(*PERSISTENT_SHARE, int(persistent.sum()))
    rows, cols = [], []
    for i in np.flatnonzero(share):
        mine = np.flatnonzero(carried[i])
        n = int(round(share[i] * len(mine)))
        rows.append(np.full(n, i))
        cols.append(np.sort(rng.choice(mine, n, replace=False)))
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    _own_deviations(rng, keys, lists, rows, cols)
    own = np.bincount(rows, minlength=stores)
    truth = np.where(independent, -1 - np.arange(stores), zone)
    return Chain(keys, ~stale, truth, tiny, own, tuple(twins))


def _own_deviations(rng: np.random.Generator, keys: np.ndarray, lists: np.ndarray,
                    rows: np.ndarray, cols: np.ndarray) -> None:
    """Move keys[rows, cols] by +1..9 cents to prices no list and no other store charges there (in place)."""
    old = keys[rows, cols]
    todo = np.arange(len(rows))
    spread = 10
    while len(todo):
        c = cols[todo]
        new = old[todo] + 2 * rng.integers(1, spread, len(todo))
        taken = (lists[:, c] == new).any(axis=0)
        for start in range(0, len(todo), 1024):  # bounded memory: (stores x 1024) at a time
            part = slice(start, start + 1024)
            taken[part] |= (keys[:, c[part]] == new[part]).any(axis=0)
        code = c * (1 << 32) + new
        _, first, count = np.unique(code, return_index=True, return_counts=True)
        twice = np.ones(len(todo), dtype=bool)
        twice[first[count == 1]] = False  # two deviations drawn at one price: redraw both
        ok = ~taken & ~twice
        keys[rows[todo[ok]], c[ok]] = new[ok]
        todo = todo[~ok]
        spread = min(spread * 2, 1000)


def matrix_of(chain: Chain, ids: np.ndarray, products: np.ndarray) -> PriceMatrix:
    scraped = tuple(AS_OF if f else STALE for f in chain.fresh)
    return PriceMatrix(tuple(int(i) for i in ids), products, chain.keys, np.zeros_like(chain.keys), scraped)


def engine_round(matrix: PriceMatrix, settings: Settings = SETTINGS) -> dict:
    """One bootstrap maintenance round of one chain; returns {store: anchor}."""
    book = GroupBook.ungrouped({s: "c" for s in matrix.stores}, AS_OF - timedelta(days=30))
    book.with_freshness(dict(zip(matrix.stores, matrix.scraped_at)))
    book.maintenance_round(matrix, AS_OF, settings)
    return book.anchor_of()


# -- accuracy -------------------------------------------------------------------

def adjusted_rand_index(truth: np.ndarray, found: np.ndarray) -> float:
    def comb2(x):
        x = np.asarray(x, dtype=np.float64)
        return (x * (x - 1) / 2).sum()

    _, t = np.unique(truth, return_inverse=True)
    _, f = np.unique(found, return_inverse=True)
    table = np.zeros((t.max() + 1, f.max() + 1), dtype=np.int64)
    np.add.at(table, (t, f), 1)
    index = comb2(table)
    a, b, n = comb2(table.sum(1)), comb2(table.sum(0)), comb2([len(truth)])
    expected = a * b / n
    top = (a + b) / 2
    return 1.0 if top == expected else float((index - expected) / (top - expected))


def cross_zone_pairs(truth: np.ndarray, found: np.ndarray) -> int:
    pairs = 0
    for label in np.unique(found):
        zones = truth[found == label]
        _, counts = np.unique(zones, return_counts=True)
        pairs += (len(zones) * (len(zones) - 1) - (counts * (counts - 1)).sum()) // 2
    return int(pairs)


def zone_report(chain: Chain, ids: np.ndarray, found: np.ndarray) -> list[str]:
    """Zones whose comparable stores ended up in more than one group, and groups that mix zones.

    `ids` are the stores' ids (row order), `found` each store's anchor id.
    """
    row_of = {int(s): r for r, s in enumerate(ids.tolist())}
    lines = []
    groupable = chain.fresh & ~chain.tiny
    for z in np.unique(chain.zone[groupable & (chain.zone >= 0)]).tolist():
        labels, counts = np.unique(found[groupable & (chain.zone == z)], return_counts=True)
        if len(labels) > 1:
            own = [int(chain.own[row_of[int(a)]]) for a in labels.tolist()]
            lines.append(f"zone {z} split {'+'.join(map(str, counts.tolist()))} "
                         f"(own deviations of those groups' anchors: {own})")
    twin = {frozenset(pair) for pair in chain.twins}
    for label in np.unique(found).tolist():
        zones, counts = np.unique(chain.zone[found == label], return_counts=True)
        if len(zones) > 1:
            mix = ", ".join(f"zone {z}: {n}" for z, n in zip(zones.tolist(), counts.tolist()))
            note = " (near twins)" if frozenset(zones.tolist()) in twin else ""
            lines.append(f"group of anchor {label} mixes {mix}{note}")
    return lines


def accuracy(chains: int, stores: int, products: int) -> tuple[float, int, int]:
    print(f"\n== accuracy: {chains} chains x {stores} stores x {products} products")
    print(f"{'chain':>5} {'zones':>5} {'groups':>6} {'ARI':>7} {'ARI all':>7} {'cross':>5} {'lonely bad':>10}")
    aris, cross, lonely_bad, notes = [], 0, 0, []
    for c in range(chains):
        zones = 6 + 4 * (c % 4)
        chain = make_chain(100 + c, stores, products, zones)
        ids = np.arange(1, stores + 1)
        anchor_of = engine_round(matrix_of(chain, ids, np.arange(1, products + 1)))
        found = np.array([anchor_of[int(i)] for i in ids])
        groupable = chain.fresh & ~chain.tiny
        ari = adjusted_rand_index(chain.zone[groupable], found[groupable])
        ari_all = adjusted_rand_index(chain.zone, found)
        pairs = cross_zone_pairs(chain.zone, found)
        # stale and tiny stores must stay alone: they cannot be compared on current pricing
        alone = np.array([np.sum(found == found[i]) == 1 for i in range(stores)])
        bad = int(np.sum(~groupable & ~alone))
        aris.append(ari)
        cross += pairs
        lonely_bad += bad
        notes += [f"  chain {c}: {line}" for line in zone_report(chain, ids, found)]
        print(f"{c:>5} {zones:>5} {len(set(found)):>6} {ari:>7.4f} {ari_all:>7.4f} {pairs:>5} {bad:>10}")
    print("ARI is over stores with current pricing and a comparable catalogue; 'ARI all' counts stale and")
    print("tiny stores in their true zone (they cannot be grouped by the rules, so they lower it)")
    print("\n".join(notes) if notes else "no zone split, no group mixing zones")
    return min(aris), cross, lonely_bad


# -- scale ------------------------------------------------------------------------

def scale(chains: int, stores: int, products: int, subset: int) -> dict:
    per_chain = stores // chains
    print(f"\n== engine at scale: {chains} chains x {per_chain} stores x {products} products, 85% carried")
    data = []
    t0 = time.perf_counter()
    for c in range(chains):
        data.append(make_chain(200 + c, per_chain, products, 24))
    prices = sum(int(np.count_nonzero(d.keys)) for d in data)
    print(f"generated {prices:,} current prices in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    results = []
    for c, chain in enumerate(data):
        ids = np.arange(c * per_chain + 1, (c + 1) * per_chain + 1)
        results.append(engine_round(matrix_of(chain, ids, np.arange(1, products + 1))))
    engine_s = time.perf_counter() - t0
    groups = sum(len(set(r.values())) for r in results)
    print(f"engine: {engine_s:.2f} s for {stores:,} stores -> {groups:,} groups "
          f"({prices / engine_s / 1e6:.1f} M prices/s)")
    aris, cross, notes = [], 0, []
    for c, (chain, anchor_of) in enumerate(zip(data, results)):
        ids = np.arange(c * per_chain + 1, (c + 1) * per_chain + 1)
        found = np.array([anchor_of[int(i)] for i in ids])
        groupable = chain.fresh & ~chain.tiny
        aris.append(adjusted_rand_index(chain.zone[groupable], found[groupable]))
        cross += cross_zone_pairs(chain.zone, found)
        notes += [f"  chain {c}: {line}" for line in zone_report(chain, ids, found)]
    print(f"accuracy at scale (not in RESULT): ARI per chain {' '.join(f'{a:.4f}' for a in aris)}, "
          f"cross-zone pairs {cross}")
    if notes:
        print("\n".join(notes))

    sub = subset // chains
    print(f"\n== exhaustive all-pairs baseline on {sub * chains} stores ({sub} per chain)")
    t_all = t_block = 0.0
    same = True
    for c, chain in enumerate(data):
        small = chain.head(sub)
        ids = np.arange(1, sub + 1)
        matrix = matrix_of(small, ids, np.arange(1, products + 1))
        t0 = time.perf_counter()
        blocked = engine_round(matrix)
        t_block += time.perf_counter() - t0
        t0 = time.perf_counter()
        exhaustive = all_pairs_round(matrix)
        t_all += time.perf_counter() - t0
        same &= blocked == exhaustive
    scale_factor = (per_chain / sub) ** 2
    est = t_all * scale_factor
    print(f"all-pairs: {t_all:.2f} s; engine on the same subset: {t_block:.2f} s; same groups: {same}")
    print(f"all-pairs extrapolated to {stores:,} stores (x{scale_factor:.0f} pairs): {est:.0f} s "
          f"= {est / engine_s:.0f}x the engine")
    return {"engine_s": engine_s, "allpairs_est": est, "same": same, "data": data, "per_chain": per_chain}


def all_pairs_round(matrix: PriceMatrix) -> dict:
    """The naive method: compare every pair of stores, then apply the same merge rule.

    match_matrix_merges is plan_merges without blocking or early stopping: the
    same ranking of the current groups, each merging into the matching sink
    ranked above it with the fewest disagreeing products (ties: the
    higher-ranked). From all ungrouped the engine's health checks have nothing
    to check, so both start from the same groups; the result is {store: anchor}
    for every store, like GroupBook.anchor_of.
    """
    comparer = Comparer(matrix, SETTINGS, AS_OF)
    stores = list(matrix.stores)
    matches = {}
    for i, a in enumerate(stores[:-1]):
        for comparison in comparer.compare_many(a, stores[i + 1:]):
            if comparison.outcome is Outcome.MATCH:
                matches[(a, comparison.store_b)] = comparison.counts.disagreeing
    groups = [GroupState(s, "c", s, (), AS_OF - timedelta(days=30)) for s in stores]
    anchor_of = {s: s for s in stores}
    for group, into in match_matrix_merges(groups, matches, comparer):
        anchor_of[group] = into
    return anchor_of


# -- end to end from PostgreSQL -------------------------------------------------

def db_round(data: list[Chain], stores: int, products: int, keep: bool) -> tuple[float, dict]:
    chains = len(data)
    per_chain = stores // chains
    server = db.embedded_server_url()
    name = f"bench_grouping_{os.getpid()}"
    db.ensure_database(server, name)
    url = db.with_database(server, name)
    print(f"\n== end to end from PostgreSQL: {stores:,} stores x {products} products (database {name})")
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
            t0 = time.perf_counter()
            rows = load(conn, data, per_chain, products)
            print(f"loaded {rows:,} prices in {time.perf_counter() - t0:.0f} s (setup, not timed)")
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("VACUUM ANALYZE prices")  # a live database is vacuumed; not part of the round
            times: dict[str, float] = {}
            t0 = time.perf_counter()
            stale = service.find_stale_anchors(conn, AS_OF, SETTINGS, run_id="bench")
            times["find_stale_anchors"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            groups = [r[0] for r in conn.execute("SELECT group_id FROM store_groups ORDER BY 1")]
            service.health_check_groups(conn, groups, AS_OF, "bench", SETTINGS)
            conn.commit()
            times["health_check_groups"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            codes = [f"bench{c}" for c in range(chains)]
            # the DAG maps merge_groups over chains; two at a time here (2 cores)
            counts = per_chain_parallel(url, codes, lambda c, code: service.merge_groups(
                c, AS_OF, "bench", SETTINGS, chains=[code], deduplicate=False))
            times["merge_groups"] = time.perf_counter() - t1
            total = time.perf_counter() - t0
            t1 = time.perf_counter()
            dedup = per_chain_parallel(url, codes, lambda c, code: service.deduplicate_members(
                c, AS_OF, SETTINGS, chains=[code]))
            dedup_s = time.perf_counter() - t1
            left = conn.execute("SELECT count(*) FROM prices").fetchone()[0]
            n_groups = conn.execute("SELECT count(*) FROM store_groups").fetchone()[0]
        for k, v in times.items():
            print(f"  {k:<22} {v:7.1f} s")
        print(f"  {'round (read, decide, write decisions)':<22} {total:7.1f} s  ({rows / total / 1e6:.2f} M prices/s)")
        print(f"  {'deduplicate_members':<22} {dedup_s:7.1f} s  ({dedup['deduplicated']:,} rows deleted, "
              f"{dedup['deduplicated'] / max(dedup_s, 1e-9) / 1e3:.0f} k rows/s; its own task, batched)")
        print(f"stale anchors {len(stale)}, groups {n_groups}, merged {counts.get('merged', 0)}, "
              f"compared {counts.get('compared', 0)}, price rows {rows:,} -> {left:,} after deduplication")
        return total, {**counts, "dedup_s": dedup_s}
    finally:
        if not keep:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def per_chain_parallel(url: str, codes: list[str], work, workers: int = 2) -> dict[str, int]:
    """Run work(connection, chain_code) for each chain, `workers` at a time; sum the counts."""
    from concurrent.futures import ThreadPoolExecutor

    def one(code: str) -> dict[str, int]:
        with psycopg.connect(url) as conn:
            result = work(conn, code)
            conn.commit()
            return result

    totals: dict[str, int] = {}
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(one, codes):
            for key, value in result.items():
                totals[key] = totals.get(key, 0) + value
    return totals


_TUPLE = np.dtype([("n", ">i2"), ("l1", ">i4"), ("product", ">i8"), ("l2", ">i4"), ("store", ">i4"),
                   ("l3", ">i4"), ("key", ">i4")])


def load(conn: psycopg.Connection, data: list[Chain], per_chain: int, products: int) -> int:
    """Stores (ungrouped), products and prices, with binary COPY of int columns and one INSERT per chain."""
    store_ids: list[np.ndarray] = []
    for c, chain in enumerate(data):
        chain_id = ensure_chain(conn, f"bench{c}", f"Bench {c}")
        ids = ensure_stores(conn, chain_id, [StoreInfo(f"s{i:05d}") for i in range(per_chain)], AS_OF, "bench")
        store_ids.append(np.array([ids[f"s{i:05d}"] for i in range(per_chain)], dtype=np.int64))
        conn.execute(
            "UPDATE stores SET last_scraped_at = CASE WHEN store_id = ANY(%s) THEN %s ELSE %s END WHERE chain_id = %s",
            (store_ids[-1][chain.fresh].tolist(), AS_OF, STALE, chain_id),
        )
    first = conn.execute(
        """INSERT INTO products (name, name_key) SELECT 'p' || g, 'p' || g FROM generate_series(1, %s) g
           RETURNING product_id""", (products * len(data),)).fetchall()
    product_ids = np.array(sorted(r[0] for r in first), dtype=np.int64).reshape(len(data), products)
    conn.execute("CREATE UNLOGGED TABLE bench_prices (product_id bigint, store_id int, key int)")
    total = 0
    for c, chain in enumerate(data):
        rows, cols = np.nonzero(chain.keys)
        buf = np.empty(len(rows), dtype=_TUPLE)
        buf["n"], buf["l1"], buf["l2"], buf["l3"] = 3, 8, 4, 4
        buf["product"] = product_ids[c][cols]
        buf["store"] = store_ids[c][rows]
        buf["key"] = chain.keys[rows, cols]
        with conn.cursor().copy("COPY bench_prices FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
            raw = buf.tobytes()
            for start in range(0, len(raw), 64 << 20):
                copy.write(raw[start:start + (64 << 20)])
            copy.write(b"\xff\xff")
        total += len(rows)
        del buf, raw
    conn.execute(
        """INSERT INTO prices (product_id, store_id, price, on_special, scraped_at, run_id)
           SELECT b.product_id, b.store_id, (b.key / 2) / 100.0, b.key % 2 = 1, s.last_scraped_at, 'bench'
           FROM bench_prices b JOIN stores s USING (store_id)"""  # store by store, as scrapes arrive
    )
    conn.execute("DROP TABLE bench_prices")
    conn.commit()
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--subset", type=int, default=1_000, help="stores in the all-pairs baseline")
    parser.add_argument("--db-stores", type=int, default=None,
                        help="stores in the PostgreSQL round (default: --stores; 0 skips it)")
    parser.add_argument("--accuracy-chains", type=int, default=4,
                        help="chains in the accuracy part (seeds 100, 101, ...; ari_min and cross_zone_pairs "
                             "cover them all)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the phases of the PostgreSQL round")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    logging.getLogger("pricegroups.grouping.service").setLevel(logging.INFO if args.verbose else logging.WARNING)

    ari_min, cross, lonely_bad = accuracy(args.accuracy_chains, 400, 1_000)
    result = scale(args.chains, args.stores, args.products, args.subset)
    db_stores = args.stores if args.db_stores is None else args.db_stores
    db_s = dedup_s = float("nan")
    if db_stores:
        per_chain = db_stores // args.chains
        data = [d.head(per_chain) for d in result["data"]]
        db_s, db_counts = db_round(data, db_stores, args.products, args.keep_db)
        dedup_s = db_counts["dedup_s"]
        if db_stores != args.stores:
            factor = args.stores / db_stores
            print(f"PostgreSQL round measured at {db_stores:,} stores; linear extrapolation to "
                  f"{args.stores:,}: round {db_s * factor:.0f} s, deduplication {dedup_s * factor:.0f} s "
                  f"(reading, comparing per chain and deleting are linear in prices)")
            db_s, dedup_s = db_s * factor, dedup_s * factor
    print(f"\nstale or tiny stores wrongly grouped: {lonely_bad}")
    if db_stores:
        measured = "measured" if db_stores == args.stores else f"extrapolated from {db_stores:,} stores"
        print(f"PostgreSQL round {db_s:.0f} s and deduplication {dedup_s:.0f} s at {args.stores:,} stores ({measured})")
    print(
        f"RESULT ari_min={ari_min:.4f} cross_zone_pairs={cross} engine_10k_s={result['engine_s']:.1f} "
        f"db_round_10k_s={db_s:.0f} allpairs_10k_s_est={result['allpairs_est']:.0f} "
        f"same_as_allpairs={'true' if result['same'] else 'false'} peak_rss_mib={peak_rss_mib():.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
