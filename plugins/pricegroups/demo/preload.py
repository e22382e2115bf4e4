"""Load a scenario's first days straight into PostgreSQL, as the DAG would have left them (for benchmarks).

Running the DAG for a week over thousands of stores takes hours; the state it
leaves is known from the truth (demo/history.py). So this does through the
library what the library does cheaply and writes the rest set-based (COPY):

* through the library: the chains (register_demo_chains), the stores
  (sync_stores on day 0: every store alone in a group of its own, with its
  'created' event), and the last day's run over the anchors, scraped from the
  demo site and resolved, reconciled, enriched and upserted by the pipeline's
  own steps: the catalogue (brands, products, listings) and the anchors' rows
  are exactly what the DAG makes of the site;
* by COPY: one group per zone, the anchors' rows dated by when each price was
  first observed (with previous prices), the members' rows after their last
  verification (rendered and parsed as a scrape would, demo/observed.py),
  verification and scrape times, runs, verifications and their baselines
  (served_overrides), merge and verify events, lateness counts, the last
  day's spot checks and its members' scrapes.

A sample of the anchors' real rows is compared with what demo/observed.py
derives for them: the load stops when they differ, since every member row is
derived the same way. Comparisons (signatures of earlier runs) are not loaded:
a normal day compares again whatever changed.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import psycopg

from pricegroups import pipeline
from pricegroups.demo.chains import register_demo_chains
from pricegroups.demo.history import History, anchor_rows, baseline_rows, member_rows, plan_history, spot_items
from pricegroups.demo.observed import PriceFields, Size, parsed_items, stored_fields
from pricegroups.demo.scenario import Scenario
from pricegroups.migrate import migrate
from pricegroups.scrape.fields import ITEM_FIELDS, ScrapedItem
from pricegroups.scrape.service import sync_stores
from pricegroups.settings import Settings

log = logging.getLogger(__name__)

Ids = dict[str, dict[str, int]]  # chain -> code -> id (stores) or sku -> product id


class PreloadError(RuntimeError):
    """The loaded state would not be what the DAG leaves (the site and the derivation disagree)."""


def logical_date(scenario: Scenario, day: int) -> datetime:
    """A day's logical date as the demo runs it: 06:00 UTC of the scenario's date."""
    return datetime.combine(scenario.date_of(day), time(6), tzinfo=timezone.utc)


def run_id(scenario: Scenario, day: int) -> str:
    """The run id a scheduled run of that day gets from Airflow."""
    return f"scheduled__{logical_date(scenario, day).isoformat()}"


def preload(
    conn: psycopg.Connection, scenario: Scenario, base_url: str, set_site_day: Callable[[int], None],
    settings: Settings, days: int = 7,
) -> History:
    """Days 0 .. days-1 of the scenario as the DAG would have left them; returns what was loaded.

    `set_site_day` moves the demo site serving `scenario` at `base_url` to a day.
    The database must be empty (migrated or not). `settings` drive the store sync;
    the pipeline's steps read theirs from the environment (PRICEGROUPS_*), as in the DAG.
    """
    migrate(conn)
    register_demo_chains(conn, base_url)
    conn.commit()
    set_site_day(0)
    for chain in scenario.chains:
        sync_stores(conn, chain, settings, logical_date(scenario, 0), run_id(scenario, 0))
    chain_ids, store_ids = _ids(conn)
    history = plan_history(scenario, days, store_ids, chain_ids, settings)
    set_site_day(history.last)
    anchors = [store_ids[c][a] for c in scenario.chains for a in sorted(set(history.anchors[c].values()))]
    _anchor_day(conn, scenario, history.last, anchors, settings)
    products, sizes = _catalogue(conn)
    fields = _derived_fields(scenario, history, sizes)
    _check_anchors(conn, scenario, history, store_ids, products, fields)
    with conn.transaction():
        _write_groups(conn, history, store_ids)
        _write_prices(conn, scenario, history, store_ids, products, fields)
        _write_stores(conn, scenario, history, store_ids)
        _write_log(conn, scenario, history, chain_ids, store_ids, products)
        _write_last_day(conn, scenario, history, chain_ids, store_ids, products, fields)
    conn.execute("ANALYZE")
    conn.commit()
    log.info("preloaded days 0-%d: %d groups, %d members", history.last,
             sum(len(z) for z in history.anchors.values()), len(history.verified))
    return history


def _ids(conn: psycopg.Connection) -> tuple[dict[str, int], Ids]:
    chain_ids = dict(conn.execute("SELECT code, chain_id FROM chains").fetchall())
    store_ids: Ids = {c: {} for c in chain_ids}
    for chain, code, store_id in conn.execute(
            "SELECT c.code, s.code, s.store_id FROM stores s JOIN chains c USING (chain_id)"):
        store_ids[chain][code] = store_id
    conn.commit()
    return chain_ids, store_ids


def _anchor_day(conn: psycopg.Connection, scenario: Scenario, day: int, anchors: list[int], settings: Settings) -> None:
    """The last day's run over the anchors, through the pipeline's own steps (the site serves that day)."""
    context = pipeline.start(conn, run_id(scenario, day), logical_date(scenario, day), dict(pipeline.DEFAULT_PARAMS),
                             "scheduled")
    batches = pipeline.scrape_batches(conn, anchors, settings.max_map_instances, settings.map_min_stores)
    conn.commit()  # a scrape commits per store
    for batch in batches:
        counts = pipeline.scrape(conn, context, dict(batch, sync=False))
        if counts["ok"] != counts["stores"]:
            raise PreloadError(f"anchor scrape of {batch['chain']}: {counts['ok']} of {counts['stores']} ok")
    for step in (pipeline.resolve, pipeline.reconcile, pipeline.enrich, pipeline.upsert, pipeline.post_process):
        step(conn, context)
    conn.execute("UPDATE runs SET finished_at = started_at WHERE run_id = %s", (context.run_id,))
    conn.commit()


def _catalogue(conn: psycopg.Connection) -> tuple[Ids, dict[str, dict[str, Size | None]]]:
    """{chain: {sku: product id}} and {chain: {sku: product size}} as the anchors' run resolved them."""
    products: Ids = {}
    sizes: dict[str, dict[str, Size | None]] = {}
    for chain, sku, product_id, value, unit in conn.execute(
            """SELECT c.code, l.sku, l.product_id, p.size_value, p.size_unit
               FROM listings l JOIN chains c USING (chain_id) JOIN products p USING (product_id)"""):
        products.setdefault(chain, {})[sku] = product_id
        sizes.setdefault(chain, {})[sku] = None if value is None else Size(value, unit)
    conn.commit()
    return products, sizes


def _sample_anchors(history: History, chain: str) -> list[str]:
    """The anchors whose real rows are checked against the derivation: a few per chain."""
    return sorted(set(history.anchors[chain].values()))[:3]


def _derived_fields(scenario: Scenario, history: History, sizes: Mapping[str, Mapping[str, Size | None]]
                    ) -> dict[str, dict[tuple, PriceFields]]:
    """Per chain, the stored columns of every (sku, price) the members' rows and the check need."""
    fields = {}
    for chain, plan in scenario.chains.items():
        wanted = {(r.sku, r.price) for m in history.members(chain) for r in member_rows(scenario, history, chain, m)}
        wanted |= {(r.sku, r.price) for a in _sample_anchors(history, chain)
                   for r in anchor_rows(scenario, history, chain, a)}
        fields[chain] = stored_fields(parsed_items(plan, wanted), sizes.get(chain, {}))
    return fields


def _check_anchors(conn: psycopg.Connection, scenario: Scenario, history: History, store_ids: Ids, products: Ids,
                   fields: Mapping[str, Mapping[tuple, PriceFields]]) -> None:
    """Stop unless the sample anchors' real rows are what the derivation gives for them."""
    for chain in scenario.chains:
        for anchor in _sample_anchors(history, chain):
            real = {row[0]: PriceFields(*row[1:]) for row in conn.execute(
                """SELECT product_id, price, was_price, unit_price, unit_measure, on_special, promo_text
                   FROM prices WHERE store_id = %s""", (store_ids[chain][anchor],))}
            derived = {products[chain][r.sku]: fields[chain][(r.sku, r.price)]
                       for r in anchor_rows(scenario, history, chain, anchor)}
            wrong = [p for p in derived if real.get(p) != derived[p]]
            if wrong or len(real) != len(derived):
                example = wrong[0] if wrong else None
                raise PreloadError(
                    f"{chain} {anchor}: {len(wrong)} of {len(derived)} derived rows differ from the scraped ones "
                    f"({len(real)} rows); e.g. product {example}: {real.get(example)} != {derived.get(example)}")
    conn.commit()


def _copy(conn: psycopg.Connection, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _temp(conn: psycopg.Connection, name: str, columns: str, rows: Iterable[Sequence[Any]]) -> None:
    """A temporary table (dropped at commit) filled by COPY."""
    conn.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")
    _copy(conn, f"COPY {name} FROM STDIN", rows)


def _write_groups(conn: psycopg.Connection, history: History, store_ids: Ids) -> None:
    """One group per zone: the anchor's own group (created on day 0) takes the zone's members."""
    _temp(conn, "_zone_groups", "store_id int, anchor_id int", (
        (ids[store], ids[history.anchor_of(chain, store)])
        for chain, ids in store_ids.items() for store in history.zone_of[chain]))
    conn.execute("""UPDATE stores s SET group_id = a.group_id
                    FROM _zone_groups z JOIN stores a ON a.store_id = z.anchor_id
                    WHERE s.store_id = z.store_id AND s.store_id <> z.anchor_id""")
    conn.execute("DELETE FROM store_groups g WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.group_id = g.group_id)")


def _write_prices(conn: psycopg.Connection, scenario: Scenario, history: History, store_ids: Ids, products: Ids,
                  fields: Mapping[str, Mapping[tuple, PriceFields]]) -> None:
    """Date the anchors' rows by their first observation; add the members' rows after their verification."""
    runs = [run_id(scenario, d) for d in range(history.days)]
    dates = [logical_date(scenario, d) for d in range(history.days)]
    _temp(conn, "_anchor_rows", "store_id int, product_id bigint, scraped_at timestamptz, previous_price numeric, "
                                "run_id text", (
        (store_ids[r.chain][r.store], products[r.chain][r.sku], dates[r.since], r.previous, runs[r.since])
        for chain in scenario.chains for anchor in sorted(set(history.anchors[chain].values()))
        for r in anchor_rows(scenario, history, chain, anchor) if r.since != history.last))
    conn.execute("""UPDATE prices p SET scraped_at = a.scraped_at, previous_price = a.previous_price, run_id = a.run_id
                    FROM _anchor_rows a WHERE p.store_id = a.store_id AND p.product_id = a.product_id""")

    def member_price_rows() -> Iterator[tuple]:
        for chain in scenario.chains:
            for member in history.members(chain):
                for r in member_rows(scenario, history, chain, member):
                    f = fields[chain][(r.sku, r.price)]
                    yield (products[chain][r.sku], store_ids[chain][member], f.price, f.was_price, f.unit_price,
                           f.unit_measure, f.on_special, f.promo_text, dates[r.since], runs[r.since], r.previous)
    _copy(conn, """COPY prices (product_id, store_id, price, was_price, unit_price, unit_measure, on_special,
                                promo_text, scraped_at, run_id, previous_price) FROM STDIN""", member_price_rows())


def _write_stores(conn: psycopg.Connection, scenario: Scenario, history: History, store_ids: Ids) -> None:
    """Scrape and verification times and lateness sums; every store first scraped on day 0."""
    late: dict[tuple[str, str], list[int]] = {}
    for (_, chain, member), (n_late, n_on_time) in history.lateness.items():
        sums = late.setdefault((chain, member), [0, 0])
        sums[0] += n_late
        sums[1] += n_on_time
    rows = []
    for chain in scenario.chains:
        for member in history.members(chain):
            when = logical_date(scenario, history.verified[(chain, member)])
            rows.append((store_ids[chain][member], when, when, *late.get((chain, member), (0, 0))))
    _temp(conn, "_member_times", "store_id int, scraped timestamptz, verified timestamptz, late int, on_time int",
          rows)
    conn.execute("""UPDATE stores s SET last_scraped_at = m.scraped, last_verified_at = m.verified,
                                        late_changes = m.late, timely_changes = m.on_time
                    FROM _member_times m WHERE s.store_id = m.store_id""")
    conn.execute("UPDATE stores SET first_scraped_at = %s", (logical_date(scenario, 0),))
    conn.execute("UPDATE listings SET first_seen_at = %s", (logical_date(scenario, 0),))


def _write_log(conn: psycopg.Connection, scenario: Scenario, history: History, chain_ids: Mapping[str, int],
               store_ids: Ids, products: Ids) -> None:
    """Runs, verifications (with their baselines), merge and verify events, members' last scrapes, lateness."""
    days = range(history.days)
    _copy(conn, "COPY runs (run_id, logical_date, params, started_at, finished_at, run_type) FROM STDIN", (
        (run_id(scenario, d), logical_date(scenario, d), json.dumps(pipeline.DEFAULT_PARAMS),
         logical_date(scenario, d), logical_date(scenario, d) + timedelta(minutes=20), "scheduled")
        for d in days if d != history.last))
    _copy(conn, "COPY verifications (run_id, store_id, chain_id, reason, planned_at) FROM STDIN", (
        (run_id(scenario, 0), ids[store], chain_ids[chain], "bootstrap", logical_date(scenario, 0))
        for chain, ids in store_ids.items() for store in history.zone_of[chain]))
    _copy(conn, """COPY verifications (run_id, store_id, chain_id, reason, planned_at, baseline_taken, group_id,
                                       anchor_store_id, checked, wrong, measured_at) FROM STDIN""",
          _verification_rows(scenario, history, chain_ids, store_ids, _group_ids(conn)))
    first_group = dict(conn.execute("SELECT store_id, group_id FROM group_events WHERE kind = 'created'").fetchall())
    _copy(conn, """COPY group_events (run_id, chain_id, kind, group_id, other_group_id, store_id, other_store_id,
                                      evidence, created_at) FROM STDIN""",
          _event_rows(scenario, history, chain_ids, store_ids, first_group, _group_ids(conn)))
    _copy(conn, "COPY scrape_log (run_id, store_id, status, pages, items, started_at, logical_date) FROM STDIN", (
        (run_id(scenario, day), store_ids[chain][member], "ok",
         math.ceil(len(history.carried[(chain, member)]) / scenario.chain(chain).page_size),
         len(history.carried[(chain, member)]), logical_date(scenario, day), logical_date(scenario, day))
        for (chain, member), day in history.verified.items()))
    _copy(conn, "COPY served_overrides (run_id, store_id, product_id, price, on_special, scraped_at) FROM STDIN", (
        (run_id(scenario, day), store_ids[chain][r.store], products[chain][r.sku], r.price.price, r.price.on_special,
         logical_date(scenario, r.since))
        for chain in scenario.chains for day, r in baseline_rows(scenario, history, chain)))
    _copy(conn, "COPY store_lateness (run_id, store_id, observed_at, late, on_time) FROM STDIN", (
        (run_id(scenario, day), store_ids[chain][member], logical_date(scenario, day), late, on_time)
        for (day, chain, member), (late, on_time) in history.lateness.items()))


def _group_ids(conn: psycopg.Connection) -> dict[int, int]:
    """{store id: group id} after the zones were formed."""
    return dict(conn.execute("SELECT store_id, group_id FROM stores").fetchall())


def _verification_rows(scenario: Scenario, history: History, chain_ids: Mapping[str, int], store_ids: Ids,
                       groups: Mapping[int, int]) -> Iterator[tuple]:
    """Members verified on days 1.. (random or risk): measured on their full catalogue; late prices were wrong."""
    for (day, chain, member), reason in sorted(history.reasons.items()):
        anchor = store_ids[chain][history.anchor_of(chain, member)]
        wrong = sum(1 for cause in scenario.deviations(chain, member, day).values() if cause == "lag")
        at = logical_date(scenario, day)
        yield (run_id(scenario, day), store_ids[chain][member], chain_ids[chain], reason, at, True,
               groups[anchor], anchor, len(history.carried[(chain, member)]), wrong, at)


def _event_rows(scenario: Scenario, history: History, chain_ids: Mapping[str, int], store_ids: Ids,
                first_group: Mapping[int, int], groups: Mapping[int, int]) -> Iterator[tuple]:
    """Day 0: every member merged into its zone's group (from its own group of one); later: each verification."""
    day0 = logical_date(scenario, 0)
    for chain in scenario.chains:
        for member in history.members(chain):
            sid, anchor = store_ids[chain][member], store_ids[chain][history.anchor_of(chain, member)]
            yield (run_id(scenario, 0), chain_ids[chain], "merged", groups[anchor], first_group[sid], sid, anchor,
                   json.dumps({"reason": "preloaded: the bootstrap merge"}), day0)
    for (day, chain, member), _ in sorted(history.reasons.items()):
        sid, anchor = store_ids[chain][member], store_ids[chain][history.anchor_of(chain, member)]
        yield (run_id(scenario, day), chain_ids[chain], "verified", groups[anchor], None, sid, anchor,
               json.dumps({"reason": "preloaded: a verification"}), logical_date(scenario, day))


def _write_last_day(conn: psycopg.Connection, scenario: Scenario, history: History, chain_ids: Mapping[str, int],
                    store_ids: Ids, products: Ids, fields: Mapping[str, Mapping[tuple, PriceFields]]) -> None:
    """What the next day's lateness reads of the last day: its spot checks and its members' full scrapes."""
    day, run = history.last, run_id(scenario, history.last)
    at = logical_date(scenario, day)
    spotted = [(chain, m) for chain in scenario.chains for m in history.members(chain)
               if history.verified[(chain, m)] != day]
    pages = {key: spot_items(scenario, history, *key, day) for key in spotted}
    _copy(conn, """COPY spot_checks (run_id, store_id, chain_id, checked_at, pages, items, compared, mismatched,
                                     timing, suspect, evidence) FROM STDIN""", (
        (run, store_ids[c][m], chain_ids[c], at, 1, len(pages[(c, m)]), len(pages[(c, m)]), 0, 0, False, "{}")
        for c, m in spotted))
    _copy(conn, "COPY spot_check_items (run_id, store_id, sku, price, was_price, on_special) FROM STDIN", (
        (run, store_ids[c][m], sku, p.price, p.was_price, p.on_special) for c, m in spotted for sku, p in pages[(c, m)]))
    _last_day_scrapes(conn, scenario, history, chain_ids, store_ids, products, fields)


def _last_day_scrapes(conn: psycopg.Connection, scenario: Scenario, history: History, chain_ids: Mapping[str, int],
                      store_ids: Ids, products: Ids, fields: Mapping[str, Mapping[tuple, PriceFields]]) -> None:
    """Staged items of the members verified on the last day: their anchor's item where they show the same price,
    their own (derived) item elsewhere."""
    day, run = history.last, run_id(scenario, history.last)
    scraped = [(c, m) for (c, m), d in history.verified.items() if d == day]
    own = {key: list(member_rows(scenario, history, *key)) for key in scraped}
    _temp(conn, "_same_as_anchor", "store_id int, anchor_id int, sku text", (
        (store_ids[c][m], store_ids[c][history.anchor_of(c, m)], sku)
        for c, m in scraped for sku in history.carried[(c, m)] - {r.sku for r in own[(c, m)]}))
    columns = ", ".join(ITEM_FIELDS)
    conn.execute(f"""INSERT INTO scraped_items (run_id, store_id, chain_id, scraped_at, product_id, {columns})
                     SELECT a.run_id, t.store_id, a.chain_id, a.scraped_at, a.product_id,
                            {", ".join("a." + f for f in ITEM_FIELDS)}
                     FROM _same_as_anchor t
                     JOIN scraped_items a ON a.run_id = %s AND a.store_id = t.anchor_id AND a.sku = t.sku""", (run,))
    items = {}  # the member's own items: the anchor's item for the SKU with the member's price fields
    for chain_code, sku, name, brand, size_text, barcode, category in conn.execute(
            """SELECT DISTINCT ON (c.code, i.sku) c.code, i.sku, i.name, i.brand, i.size_text, i.barcode, i.category
               FROM scraped_items i JOIN chains c USING (chain_id)
               WHERE i.run_id = %s ORDER BY c.code, i.sku""", (run,)):
        items[(chain_code, sku)] = ScrapedItem(sku, name, Decimal(0), brand, size_text, barcode, category)
    _copy(conn, f"COPY scraped_items (run_id, store_id, chain_id, scraped_at, product_id, {columns}) FROM STDIN", (
        (run, store_ids[c][m], chain_ids[c], logical_date(scenario, day), products[c][r.sku],
         *_staged(items[(c, r.sku)], fields[c][(r.sku, r.price)], r.price))
        for c, m in scraped for r in own[(c, m)]))


def _staged(item: ScrapedItem, f: PriceFields, price: Any) -> tuple:
    """A staged item: the listing's text as scraped, the member's price fields (multi-buy from its price)."""
    return item._replace(price=f.price, was_price=f.was_price, unit_price=f.unit_price, unit_measure=f.unit_measure,
                         on_special=f.on_special, promo_text=f.promo_text, multibuy_qty=price.multibuy_qty,
                         multibuy_price=price.multibuy_price).as_row()
