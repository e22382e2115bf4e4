"""What the demo shows a user, measured against the scenario's ground truth.

Only the demo runner and tests use this module: the pipeline never sees the
truth. Per simulated day: stores scraped against all stores, groups found
against true zones (adjusted Rand index), inferred prices that were wrong,
the upsert's counts and the group changes; and, next to the truth, what the
pipeline measured itself (DESIGN.md §9): prices its random verifications
checked and found wrong, and the estimate with its 95% interval.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from math import comb
from typing import Hashable, Mapping, Sequence

import psycopg

from pricegroups.demo.scenario import Scenario
from pricegroups.grouping.verification import Estimate, estimates
from pricegroups.settings import ESTIMATE_DAYS
from pricegroups.ui.svg import Cell, MapRow, Series, chart, group_colors, group_map


@dataclass(frozen=True)
class DayMetrics:
    day: int
    run_id: str
    scraped: int
    stores: int
    groups: int
    true_zones: int
    ari: float
    inferred: int
    wrong_inferred: int
    observed: int
    wrong_observed: int
    created: int
    updated: int
    unchanged: int
    ignored_older: int
    merges: int
    ejections: int
    anchor_changes: int
    wall_s: float
    checked: int = 0  # prices the run's random verifications checked (self-measured, no truth)
    wrong_checked: int = 0  # of those, served prices the store did not charge
    pages: int = 0  # catalogue pages of the run's full scrapes
    spot_pages: int = 0  # catalogue pages of its spot checks (one or so per member not scraped)
    spot_suspects: int = 0  # members whose spot check sent them to a full scrape
    wrong_causes: dict[str, int] = field(default_factory=dict)  # wrong_inferred by WRONG_CAUSES key

    @property
    def scraped_share(self) -> float:
        return self.scraped / self.stores if self.stores else 0.0

    @property
    def wrong_inferred_share(self) -> float:
        return self.wrong_inferred / self.inferred if self.inferred else 0.0

    @property
    def wrong_checked_share(self) -> float:
        return self.wrong_checked / self.checked if self.checked else 0.0


def adjusted_rand_index(truth: Mapping[Hashable, Hashable], found: Mapping[Hashable, Hashable]) -> float:
    """Agreement of two partitions of the same items, 1.0 when identical, ~0 when random."""
    items = sorted(set(truth) & set(found), key=str)
    n = len(items)
    if n < 2:
        return 1.0
    pairs = Counter((truth[i], found[i]) for i in items)
    a = Counter(truth[i] for i in items)
    b = Counter(found[i] for i in items)
    index = sum(comb(c, 2) for c in pairs.values())
    sum_a = sum(comb(c, 2) for c in a.values())
    sum_b = sum(comb(c, 2) for c in b.values())
    expected = sum_a * sum_b / comb(n, 2)
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)


def measure_day(
    conn: psycopg.Connection, scenario: Scenario, day: int, run_id: str, wall_s: float
) -> DayMetrics:
    scraped, pages = conn.execute(
        "SELECT count(DISTINCT store_id), coalesce(sum(pages), 0) FROM scrape_log WHERE run_id = %s", (run_id,)
    ).fetchone()
    spot_pages, spot_suspects = conn.execute(
        "SELECT coalesce(sum(pages), 0), count(*) FILTER (WHERE suspect) FROM spot_checks WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    stores = conn.execute("SELECT count(*) FROM stores WHERE active").fetchone()[0]
    placement = conn.execute(
        "SELECT c.code, s.code, s.group_id FROM stores s JOIN chains c USING (chain_id) WHERE s.active"
    ).fetchall()
    truth: dict[tuple[str, str], str] = {}
    zones = 0
    for chain in {c for c, _, _ in placement}:
        true_zones = scenario.true_zones(chain, day)
        zones += len(true_zones)
        for zone, codes in true_zones.items():
            for code in codes:
                truth[(chain, code)] = f"{chain}:{zone}"
    found = {(c, s): g for c, s, g in placement if (c, s) in truth}
    groups = len(set(found.values()))
    accuracy = price_accuracy(conn, scenario, day)
    summary = conn.execute("SELECT summary FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    upsert = _step_counts(summary[0] if summary else {}, ("upsert", "rescrape_upsert"))
    events = dict(
        conn.execute("SELECT kind, count(*) FROM group_events WHERE run_id = %s GROUP BY kind", (run_id,)).fetchall()
    )
    checked, wrong_checked = conn.execute(
        """SELECT coalesce(sum(checked), 0), coalesce(sum(wrong), 0) FROM verifications
           WHERE run_id = %s AND reason = 'random' AND checked IS NOT NULL""",
        (run_id,),
    ).fetchone()
    return DayMetrics(
        day=day, run_id=run_id, scraped=scraped, stores=stores, groups=groups, true_zones=zones,
        ari=adjusted_rand_index(truth, found), inferred=accuracy.inferred,
        wrong_inferred=accuracy.wrong_inferred, observed=accuracy.observed, wrong_observed=accuracy.wrong_observed,
        created=upsert.get("created", 0), updated=upsert.get("updated", 0),
        unchanged=upsert.get("unchanged", 0), ignored_older=upsert.get("ignored_older", 0),
        merges=events.get("merged", 0), ejections=events.get("member_ejected", 0),
        pages=int(pages), spot_pages=int(spot_pages), spot_suspects=spot_suspects,
        anchor_changes=events.get("anchor_replaced", 0), wall_s=wall_s,
        checked=int(checked), wrong_checked=int(wrong_checked), wrong_causes=accuracy.causes,
    )


def estimated_error(conn: psycopg.Connection, until: datetime | None = None,
                    days: int | None = ESTIMATE_DAYS) -> Estimate:
    """The pipeline's own estimate of the wrong share of served prices (verification.estimates "served").

    Over the `days` up to `until` (default: the newest measurement); `days=None`
    takes every measurement (the whole demo).
    """
    if until is None:
        until = conn.execute("SELECT max(measured_at) FROM verifications").fetchone()[0]
    since = until - timedelta(days=days) if until is not None and days is not None else None
    return estimates(conn, since=since, until=until)["served"]["overall"]


def _step_counts(summary: Mapping, steps: Sequence[str]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for step in steps:
        counts = (summary.get("totals") or {}).get(step) or {}
        for key, value in counts.items():
            if isinstance(value, int):
                total[key] += value
    return dict(total)


SERVED_NOT_OBSERVED = ("inferred", "override", "stale_override", "late")

# why a served, not observed price was wrong, from the scenario's truth (the pipeline cannot know)
WRONG_CAUSES = {
    "moved": "the store shows another zone's list and has not been verified since",
    "member_late": "the store was late with a price change the anchor already shows",
    "member_own": "the store's own price, not (yet) kept as an override",
    "member_glitch": "a one-off price the store shows that day only (no rule can infer it)",
    "anchor_late": "the anchor was late with a price change its members already show",
    "anchor_own": "the anchor's own price, served to its members",
    "anchor_glitch": "a one-off price the anchor showed that day, served to its members",
    "not_at_anchor": "a product the anchor does not carry, served from an older row (the store's or a group-mate's)",
    "other": "none of the above",
}


@dataclass(frozen=True)
class Accuracy:
    """Effective prices of one day against the truth; `causes` splits `wrong_inferred` (WRONG_CAUSES)."""

    inferred: int
    wrong_inferred: int
    observed: int
    wrong_observed: int
    causes: dict[str, int]


def price_accuracy(conn: psycopg.Connection, scenario: Scenario, day: int) -> Accuracy:
    """Served prices of `day` checked against the truth: inferred and observed, right and wrong.

    "Inferred" is every price served without having been observed at that store
    since its last verification: the anchor's (inferred), an override kept at the
    verification, or the anchor's in place of a stale override. That is the share
    the target wrong_inferred_share is about.
    """
    skus: dict[tuple[str, int], list[str]] = {}
    for chain, sku, product in conn.execute(
        "SELECT c.code, l.sku, l.product_id FROM listings l JOIN chains c USING (chain_id)"
    ):
        skus.setdefault((chain, product), []).append(sku)
    counts: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    truth_cache: dict[tuple[str, str], dict] = {}
    rows = conn.execute(
        # every served row, read once and then joined: the view's row estimate for the whole table is far
        # too low (a few hundred for ~130k rows), which once made this a nested loop over stores x rows
        """WITH e AS MATERIALIZED (SELECT store_id, product_id, price, source, source_store_id FROM effective_prices)
           SELECT c.code, s.code, e.product_id, e.price, e.source, a.code, e.source_store_id = a.store_id
           FROM e JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = s.chain_id
           JOIN store_groups g ON g.group_id = s.group_id JOIN stores a ON a.store_id = g.anchor_store_id"""
    )
    for chain, store, product, price, source, anchor, from_anchor in rows:
        key = (chain, store)
        if key not in truth_cache:
            truth_cache[key] = scenario.true_prices(chain, store, day) if scenario.is_open(chain, store, day) else {}
        true = truth_cache[key]
        if not true:
            continue
        carried = [s for s in skus.get((chain, product), []) if s in true]
        if not carried:
            continue  # the store does not carry it today; retention will drop it
        source = "inferred" if source in SERVED_NOT_OBSERVED else source
        counts[source] += 1
        if price not in [true[s].price for s in carried]:
            counts[f"wrong_{source}"] += 1
            if source == "inferred":
                causes[_wrong_cause(scenario, chain, store, anchor, from_anchor, carried, day)] += 1
    return Accuracy(counts["inferred"], counts["wrong_inferred"], counts["observed"], counts["wrong_observed"],
                    dict(causes))


def _wrong_cause(scenario: Scenario, chain: str, store: str, anchor: str, from_anchor: bool,
                 skus: Sequence[str], day: int) -> str:
    """One of WRONG_CAUSES for a wrong price served to `store` (the first that applies)."""
    if scenario.zone_of(chain, store, day) != scenario.zone_of(chain, anchor, day):
        return "moved"
    own = scenario.deviations(chain, store, day)
    if any(own.get(s) == "lag" for s in skus):
        return "member_late"
    if any(own.get(s) == "own" for s in skus):
        return "member_own"
    if any(own.get(s) == "glitch" for s in skus):
        return "member_glitch"
    if not from_anchor:
        return "not_at_anchor"
    theirs = scenario.deviations(chain, anchor, day)
    if any(theirs.get(s) == "lag" for s in skus):
        return "anchor_late"
    if any(theirs.get(s) == "own" for s in skus):
        return "anchor_own"
    if any(theirs.get(s) == "glitch" for s in skus):
        return "anchor_glitch"
    return "other"


COLUMNS = [
    ("day", "day"), ("scraped", "scraped"), ("stores", "stores"), ("groups", "groups"), ("true_zones", "zones"),
    ("ari", "ARI"), ("wrong_inferred", "wrong inf."), ("inferred", "inferred"), ("created", "created"),
    ("updated", "updated"), ("unchanged", "unchanged"), ("ignored_older", "older"), ("merges", "merges"),
    ("ejections", "ejected"), ("anchor_changes", "anchors"), ("checked", "checked"),
    ("wrong_checked", "wrong chk."), ("spot_pages", "spot pg."), ("spot_suspects", "suspects"), ("wall_s", "wall s"),
]


def text_table(days: Sequence[DayMetrics]) -> str:
    header = " ".join(f"{label:>10}" for _, label in COLUMNS)
    lines = [header]
    for m in days:
        values = asdict(m)
        cells = []
        for key, _ in COLUMNS:
            value = values[key]
            cells.append(f"{value:>10.3f}" if key == "ari" else f"{value:>10.1f}" if key == "wall_s" else f"{value:>10}")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def _estimate_line(final: Mapping[str, object]) -> str:
    if "estimated_wrong_share" not in final:
        return ""
    return (
        "<p>Self-measured (random verifications, no ground truth): "
        f"{100 * float(final['estimated_wrong_share']):.3f}% of served prices wrong, 95% interval "  # type: ignore[arg-type]
        f"{100 * float(final.get('estimated_wrong_low', 0.0)):.3f}%&ndash;"  # type: ignore[arg-type]
        f"{100 * float(final.get('estimated_wrong_high', 1.0)):.3f}%; "  # type: ignore[arg-type]
        f"measured against the truth: {100 * float(final.get('wrong_inferred_share', 0.0)):.3f}%.</p>"  # type: ignore[arg-type]
    )


def wrong_by_cause(days: Sequence[DayMetrics]) -> dict[str, int]:
    """Wrong inferred prices over `days` by cause, largest first."""
    total: Counter[str] = Counter()
    for m in days:
        total.update(m.wrong_causes)
    return dict(total.most_common())


def causes_text(days: Sequence[DayMetrics]) -> str:
    causes = wrong_by_cause(days)
    wrong = sum(causes.values())
    return "\n".join(f"{n:>8} {n / wrong:6.1%}  {cause}: {WRONG_CAUSES[cause]}" for cause, n in causes.items())


def _causes_html(days: Sequence[DayMetrics]) -> str:
    causes = wrong_by_cause(days)
    if not causes:
        return ""
    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{n}</td><td style='text-align:left'>"
                   f"{html.escape(WRONG_CAUSES[c])}</td></tr>" for c, n in causes.items())
    return f"<h2>Wrong inferred prices by cause (from the truth)</h2><table>{rows}</table>"


def day_charts(days: Sequence[DayMetrics]) -> list[str]:
    """The report's charts, one simulated day per category (pricegroups.ui.svg: axes, units, legends)."""
    labels = [str(m.day) for m in days]
    axis = {"x_label": "simulated day"}
    return [
        chart("Stores scraped per day", labels,
              [Series("scraped", [m.scraped for m in days]),
               Series("all stores", [m.stores for m in days], kind="line", color="#333")], y_label="stores", **axis),
        chart("Groups found and true zones", labels,
              [Series("groups found", [m.groups for m in days], color="#59a14f"),
               Series("true zones", [m.true_zones for m in days], kind="line", color="#333")],
              y_label="groups", **axis),
        chart("Groups against true zones: adjusted Rand index (1 = identical)", labels,
              [Series("ARI", [m.ari for m in days], kind="line", color="#4e79a7")], y_label="ARI", y_max=1.0, **axis),
        chart("Wrong served prices", labels,
              [Series("inferred prices wrong (truth)", [m.wrong_inferred_share for m in days], color="#e15759"),
               Series("served prices wrong at random verifications (self-measured)",
                      [m.wrong_checked_share if m.checked else None for m in days], kind="points", color="#333")],
              y_label="% of prices", percent=True, **axis),
        chart("Prices written per day", labels,
              [Series("created", [m.created for m in days], color="#4e79a7"),
               Series("updated", [m.updated for m in days], color="#f28e2b")], y_label="prices", **axis),
    ]


def truth_maps(conn: psycopg.Connection, scenario: Scenario, day: int) -> str:
    """Per chain, the groups of `day` over its true zones: one row per zone, fill = group, outline = zone.

    A wrong merge shows as one fill in two zone rows, a split zone as two fills in one row.
    """
    placed: dict[str, dict[str, tuple[int, bool]]] = {}
    for chain, store, group, anchor in conn.execute(
        """SELECT c.code, s.code, s.group_id, s.store_id = g.anchor_store_id
           FROM stores s JOIN chains c USING (chain_id) JOIN store_groups g ON g.group_id = s.group_id
           WHERE s.active ORDER BY c.code, s.code"""
    ):
        placed.setdefault(chain, {})[store] = (group, anchor)
    maps = []
    for chain, stores in placed.items():
        sizes = Counter(group for group, _ in stores.values())
        anchors = {group: store for store, (group, anchor) in stores.items() if anchor}
        rows = [MapRow(f"zone {zone}", [Cell(code, stores[code][0], stores[code][1] and sizes[stores[code][0]] > 1,
                                             outline=zone)
                                        for code in sorted(codes) if code in stores])
                for zone, codes in sorted(scenario.true_zones(chain, day).items())]
        names = {g: f"group {g} · anchor {anchors.get(g, '?')} · {n} stores" for g, n in sizes.items()}
        maps.append(group_map(f"{chain} on day {day}: groups found (fill) against true zones (rows, outline)",
                              rows, group_colors(sizes), group_names=names, outline_name="true zone"))
    return "".join(maps)


def html_report(days: Sequence[DayMetrics], final: Mapping[str, object], maps: str = "") -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(round(v, 3) if isinstance(v, float) else v))}</td>"
                         for v in (asdict(m)[k] for k, _ in COLUMNS)) + "</tr>"
        for m in days
    )
    charts = "".join(day_charts(days))
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    return (
        "<!doctype html><meta charset='utf-8'><title>pricegroups demo</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f2f2f2}</style>"
        f"<h1>pricegroups demo: {len(days)} simulated days</h1>"
        f"{_estimate_line(final)}<pre>{html.escape(json.dumps(final, indent=2))}</pre>"
        f"<table><tr>{head}</tr>{rows}</table>{_causes_html(days)}<div>{charts}</div>"
        + (f"<h2>Group maps: found groups against the truth</h2><div>{maps}</div>" if maps else "")
    )
