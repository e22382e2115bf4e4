"""The operator's pages as HTML strings, from the plain data `queries` returns.

Pure functions: no I/O, every value escaped, charts inlined as SVG (`svg`), no
script and nothing fetched from elsewhere, so a page works offline and inside
Airflow's iframe. `base` is where the app is mounted (e.g. "/pricegroups"):
links stay inside the app (the Airflow UI shows it in an iframe).

The markup carries data-* attributes (data-chain, data-group, data-anchor,
data-store, data-kind) so a browser test can check a page against the database.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote, urlencode

from pricegroups.ui.svg import ALONE, Cell, MapRow, Series, chart, group_colors, group_map

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px 20px;color:#222;font-size:14px}
h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}a{color:#1f5fa8}
table{border-collapse:collapse;margin:6px 0 12px}td,th{padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}tr+tr td{border-top:1px solid #eee}td.n,th.n{text-align:right}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;
min-width:190px}.card b{display:block;font-size:18px}.card span{color:#555;font-size:12px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
.muted{color:#666}.bad{color:#b3261e;font-weight:600}.ok{color:#1e7a34}
form.filter{display:flex;gap:8px;align-items:center;margin:4px 0 12px}select,button{font-size:14px;padding:2px 6px}
details>summary{cursor:pointer}pre{background:#f7f7f7;padding:6px;max-width:900px;overflow:auto;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.kind{font-weight:600}
"""

KIND_LABELS = {
    "merged": "merge", "member_ejected": "ejection", "anchor_replaced": "anchor change", "created": "new group",
    "verified": "verified", "reset": "reset", "store_closed": "store closed",
}


def document(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width'><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>")


def message_page(title: str, text: str) -> str:
    return document(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


def when(value: datetime | None) -> str:
    """UTC, to the minute; 'never' for None."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def day_label(value: datetime) -> str:
    return value.strftime("%b %d").replace(" 0", " ")


def run_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A day label per run ("Mar 4"), with the time when two runs share a day ("Mar 4 06:00")."""
    days = [day_label(r["logical_date"]) for r in runs]
    return [d if days.count(d) == 1 else f"{d} {r['logical_date']:%H:%M}" for d, r in zip(days, runs)]


def percent(share: float | None, decimals: int = 2) -> str:
    return "–" if share is None else f"{100 * share:.{decimals}f}%"


def estimate_text(e: Mapping[str, Any] | None) -> str:
    if not e or not e.get("checked"):
        return "nothing measured yet"
    text = (f"{percent(e['share'])} wrong (95% interval {percent(e['low'])}–{percent(e['high'])}) "
            f"from {e.get('samples', e.get('stores', 0))} store(s), {e['checked']:,} price(s)")
    if e.get("unverified_share", 1.0) < 1.0:
        text += f"; {percent(e['unverified_share'])} of the prices served were not verified by their run"
    return text


def evidence_text(kind: str, evidence: Mapping[str, Any] | None) -> str:
    """One line an operator reads instead of the evidence JSON."""
    ev = dict(evidence or {})
    if "overlap" in ev:
        own = ev.get("own") or [0, 0]
        text = (f"{ev.get('outcome', '?')}: {ev.get('agreeing', 0):,} of {ev['overlap']:,} products agree "
                f"({percent(ev.get('rate'))}); own deviations {own[0]}/{own[1]}, shared {ev.get('shared', 0)}, "
                f"timing {ev.get('timing', 0)}")
        if ev.get("reason"):
            text += f" — {ev['reason']}"
        if ev.get("deduplicated"):
            text += f"; {ev['deduplicated']:,} duplicate rows dropped"
        return text
    if kind == "anchor_replaced":
        text = str(ev.get("reason", "anchor replaced"))
        if "checked" in ev:
            text += (f": {ev.get('mismatched_old_anchor', 0)} of {ev['checked']} members checked mismatched the "
                     f"old anchor, {ev.get('matched_new_anchor', 0)} matched the new one")
        if isinstance(ev.get("old_vs_new"), Mapping):
            text += f"; old vs new anchor: {evidence_text('compare', ev['old_vs_new'])}"
        return text
    if ev.get("reason"):
        return str(ev["reason"])
    return ", ".join(f"{k}={v}" for k, v in ev.items() if not isinstance(v, (list, dict)))


# -- the Price groups page ------------------------------------------------------


def groups_page(
    base: str,
    chains: Sequence[Mapping[str, Any]],
    selected: str | None,
    overviews: Sequence[Mapping[str, Any]],
    newest: Mapping[str, Any] | None,
) -> str:
    """Every chain (or the `selected` one): cards, charts, the group map, the groups and the latest events."""
    options = "".join(
        f"<option value='{escape(c['code'])}'{' selected' if c['code'] == selected else ''}>"
        f"{escape(c['name'])} ({escape(c['code'])})</option>" for c in chains)
    parts = [
        "<h1>Price groups</h1>",
        f"<form class='filter' method='get' action='{escape(base)}/groups'><label for='chain'>Chain</label>"
        f"<select id='chain' name='chain'><option value=''>all chains</option>{options}</select>"
        "<button type='submit'>Show</button></form>",
    ]
    if newest:
        counts = newest["events"]
        parts.append(
            f"<p id='newest-run'>Newest daily run: <a href='{escape(run_href(base, newest['run_id']))}'>"
            f"{escape(newest['run_id'])}</a> ({when(newest['logical_date'])}): "
            + ", ".join(f"{counts.get(k, 0)} {label}" for k, label in (
                ("merged", "merge(s)"), ("member_ejected", "ejection(s)"), ("anchor_replaced", "anchor change(s)"),
                ("verified", "member(s) verified")))
            + ".</p>")
        if newest.get("storage"):
            parts.append(storage_table(newest["storage"]))
    if not chains:
        parts.append("<p>No chain registered yet: run the DAG (or <code>python -m pricegroups demo-chains</code>).</p>")
    for ov in overviews:
        parts.append(chain_section(base, ov))
    title = f"Price groups: {selected}" if selected else "Price groups"
    return document(title, "".join(parts))


STORAGE_ROWS = (("db_prices", "Database: prices"), ("db_catalogue", "Database: catalogue and stores"),
                ("db_run_records", "Database: run records"), ("db_audit", "Database: audit (group events, merges)"),
                ("db_other", "Database: other"), ("db_total", "Database: total"),
                ("snapshot", "Snapshot store (raw pages)"))


def megabytes(n: float) -> str:
    return f"{n / 1048576:,.1f} MB"


def storage_table(storage: Mapping[str, Any]) -> str:
    """What the newest run measured (retention.py): sizes by table group and the snapshots, with the change."""
    rows = []
    for key, label in STORAGE_ROWS:
        size = storage.get(f"{key}_bytes")
        if size is None:
            continue
        change = storage.get(f"{key}_bytes_change")
        delta = "" if change is None else f"{'+' if change >= 0 else '−'}{megabytes(abs(change))}"
        rows.append(f"<tr><td>{escape(label)}</td><td>{megabytes(size)}</td>"
                    f"<td>{delta}</td></tr>")
    return ("<table id='storage'><caption>Storage after the newest run (change since the run before)</caption>"
            "<tr><th>what</th><th>size</th><th>change</th></tr>" + "".join(rows) + "</table>")


def chain_section(base: str, ov: Mapping[str, Any]) -> str:
    info, groups, runs = ov["chain"], ov["groups"], ov["runs"]
    code = info["code"]
    colors = group_colors({g["group_id"]: g["size"] for g in groups})
    last = runs[-1] if runs else None
    scraped = sum(r["scraped"] for r in runs)
    possible = sum(r["stores"] for r in runs)
    cards = [
        ("groups", f"{info['groups']:,}", f"for {info['stores']:,} active stores; {info['groups_with_members']:,} "
                                          "with members"),
        ("error", percent(ov["error"]["share"]) if ov["error"] else "–",
         ("served prices wrong, self-measured: " + estimate_text(ov["error"])
          + (f" over {ov['error']['days']} days to {when(ov['error']['until'])}" if ov["error"] else ""))),
        ("last-run", f"{last['scraped']:,} of {last['stores']:,}" if last else "–",
         f"stores scraped by the newest daily run ({when(last['logical_date'])})" if last else "no daily run yet"),
        ("saved", f"{possible - scraped:,} of {possible:,}" if runs else "–",
         f"scrapes saved over the last {len(runs)} daily run(s) "
         f"({percent((possible - scraped) / possible, 0) if possible else '–'})"),
    ]
    out = [f"<section class='chain' id='chain-{escape(code)}' data-chain='{escape(code)}'>",
           f"<h2>{escape(info['name'])} <span class='muted'>({escape(code)})</span></h2><div class='cards'>"]
    out += [f"<div class='card' data-card='{key}'><b>{escape(big)}</b><span>{escape(small)}</span></div>"
            for key, big, small in cards]
    out.append("</div><div class='charts'>")
    out.append(scrapes_chart(runs))
    out.append(error_chart(runs))
    out.append("</div>")
    out.append(chain_map(code, groups, colors))
    out.append(groups_table(groups, colors))
    out.append(f"<h3>Latest group changes</h3>{events_table(base, ov['events'], show_run=True)}")
    out.append("</section>")
    return "".join(out)


def scrapes_chart(runs: Sequence[Mapping[str, Any]]) -> str:
    labels = run_labels(runs)
    return chart(
        "Stores scraped per daily run", labels,
        [Series("scraped", [r["scraped"] for r in runs], color="#4e79a7",
                tips=[f"{day_label(r['logical_date'])}: {r['scraped']} of {r['stores']} stores scraped, "
                      f"{r['saved']} saved ({r['run_id']})" for r in runs]),
         Series("failed", [r["failed"] for r in runs], color="#e15759"),
         Series("all stores", [r["stores"] for r in runs], kind="line", color="#333")],
        y_label="stores", x_label="run (logical date, UTC)", width=560, empty="no daily run yet")


def error_chart(runs: Sequence[Mapping[str, Any]]) -> str:
    labels = run_labels(runs)

    def pick(key: str, field: str) -> list[float | None]:
        return [r[key][field] if r[key] else None for r in runs]

    return chart(
        "Served prices wrong (self-measured)", labels,
        [Series("this run's random verifications", pick("error", "share"), kind="points", color="#e15759",
                low=pick("error", "low"), high=pick("error", "high")),
         Series("14-day estimate", pick("error_window", "share"), kind="line", color="#4e79a7")],
        y_label="% of served prices", x_label="run (logical date, UTC)", percent=True, width=560,
        y_max=max([v for v in pick("error", "high") + pick("error_window", "share") if v is not None] + [0.01]))


def chain_map(code: str, groups: Sequence[Mapping[str, Any]], colors: Mapping[Any, str], per_row: int = 25) -> str:
    """Stores in code order (a store keeps its place from day to day), coloured by group."""
    cells = []
    for g in groups:  # a store alone anchors itself: only anchors of groups with members are dotted
        cells.append(Cell(g["anchor"]["store"], g["group_id"], anchor=g["size"] > 1,
                          note=f"scraped {when(g['anchor']['scraped_at'])}"))
        for m in g["members"]:
            note = f"verified {when(m['verified_at'])}"
            if m["deviations"] is not None:
                note += f", {m['deviations']} deviation(s)"
            cells.append(Cell(m["store"], g["group_id"], note=note))
    cells.sort(key=lambda c: c.store)
    rows = [MapRow(f"{chunk[0].store}–{chunk[-1].store}", chunk)
            for chunk in (cells[i:i + per_row] for i in range(0, len(cells), per_row))]
    names = {g["group_id"]: f"group {g['group_id']} · anchor {g['anchor']['store']} · {g['size']} stores"
             for g in groups}
    return group_map(f"Group map: {code} (one cell per store, colour = group)", rows, colors, group_names=names)


def groups_table(groups: Sequence[Mapping[str, Any]], colors: Mapping[Any, str]) -> str:
    rows = []
    for g in groups:
        members = g["members"]
        verified = [m["verified_at"] for m in members if m["verified_at"]]
        deviations = sum(m["deviations"] or 0 for m in members)
        detail = "".join(
            f"<tr data-store='{escape(m['store'])}'><td>{escape(m['store'])}</td><td>{when(m['verified_at'])}</td>"
            f"<td>{when(m['scraped_at'])}</td>"
            f"<td class='n'>{'–' if m['deviations'] is None else m['deviations']}</td>"
            f"<td>{_check_text(m['last_check'])}</td></tr>" for m in members)
        members_html = (
            f"<details><summary>{len(members)} member(s)</summary><table><tr><th>store</th><th>last verified</th>"
            f"<th>last scraped</th><th class='n'>deviations</th><th>last check (served prices wrong)</th></tr>"
            f"{detail}</table></details>" if members else "<span class='muted'>alone</span>")
        rows.append(
            f"<tr class='group' data-group='{g['group_id']}' data-anchor='{escape(g['anchor']['store'])}' "
            f"data-size='{g['size']}'><td><span class='swatch' style='background:{colors.get(g['group_id'], ALONE)}'>"
            f"</span>{g['group_id']}</td><td>{escape(g['anchor']['store'])}<br><span class='muted'>scraped "
            f"{when(g['anchor']['scraped_at'])}</span></td><td class='n'>{g['size']}</td>"
            f"<td>{when(min(verified)) + ' – ' + when(max(verified)) if verified else '–'}</td>"
            f"<td class='n'>{deviations}</td><td>{members_html}</td></tr>")
    return ("<h3>Groups</h3><table class='groups'><tr><th>group</th><th>anchor</th><th class='n'>stores</th>"
            "<th>members last verified (oldest – newest)</th><th class='n'>deviations</th><th>members</th></tr>"
            + "".join(rows) + "</table>")


def _check_text(check: Mapping[str, Any] | None) -> str:
    if not check:
        return "<span class='muted'>not measured</span>"
    cls = "bad" if check["wrong"] else "ok"
    return f"<span class='{cls}'>{check['wrong']}</span> of {check['checked']:,} ({when(check['measured_at'])})"


def events_table(base: str, events: Sequence[Mapping[str, Any]], show_run: bool) -> str:
    if not events:
        return "<p class='muted'>No group changes recorded.</p>"
    rows = []
    for e in events:
        stores = escape(e["store"] or "")
        if e["other_store"]:
            stores += f" → {escape(e['other_store'])}" if e["kind"] != "anchor_replaced" else \
                f" (was {escape(e['other_store'])})"
        groups = str(e["group_id"]) + (f" ← {e['other_group_id']}" if e["other_group_id"] else "")
        run = (f"<td><a href='{escape(run_href(base, e['run_id']))}'>{escape(e['run_id'])}</a></td>"
               if show_run and e["run_id"] else "<td></td>" if show_run else "")
        rows.append(
            f"<tr class='event' data-kind='{escape(e['kind'])}' data-event='{e['event_id']}'><td>{when(e['at'])}</td>"
            f"{run}<td>{escape(e['chain'])}</td><td class='kind'>{escape(KIND_LABELS.get(e['kind'], e['kind']))}</td>"
            f"<td>{escape(groups)}</td><td>{stores}</td><td>{escape(evidence_text(e['kind'], e['evidence']))}"
            f"<details><summary class='muted'>evidence</summary><pre>"
            f"{escape(json.dumps(e['evidence'], indent=1, sort_keys=True, default=str))}</pre></details></td></tr>")
    return ("<table class='events'><tr><th>when</th>" + ("<th>run</th>" if show_run else "")
            + "<th>chain</th><th>change</th><th>group (← from)</th><th>store</th><th>evidence</th></tr>"
            + "".join(rows) + "</table>")


def run_href(base: str, run_id: str) -> str:
    return f"{base}/runs/{quote(run_id, safe='')}"


def groups_href(base: str, chain: str | None = None) -> str:
    return f"{base}/groups" + (f"?{urlencode({'chain': chain})}" if chain else "")


# -- the run view ---------------------------------------------------------------


def run_page(base: str, view: Mapping[str, Any]) -> str:
    if view.get("pruned"):
        return pruned_run_page(base, view)
    run, scraped, measured, decisions = view["run"], view["scraped"], view["measured"], view["decisions"]
    counts = decisions["counts"]
    kind_of_run = "backfill" if run["backfill"] else "daily run"
    parts = [
        f"<h1>Run {escape(run['run_id'])}</h1>",
        f"<p data-run='{escape(run['run_id'])}'>{escape(kind_of_run)} ({escape(run['run_type'])}) for "
        f"{when(run['logical_date'])} UTC; started {when(run['started_at'])}, "
        f"{'finished ' + when(run['finished_at']) if run['finished_at'] else 'not finished'}. "
        f"Params: <code>{escape(json.dumps(run['params'], sort_keys=True, default=str))}</code>. "
        f"<a href='{escape(groups_href(base))}'>All price groups</a></p>",
        "<div class='cards'>",
        _card("scraped", f"{sum(c['scraped'] for c in scraped['chains']):,} of "
                         f"{sum(c['stores'] for c in scraped['chains']):,}",
              "stores scraped (of the active stores of the chains it scraped)"),
        _card("merges", str(counts.get("merged", 0)), "groups merged"),
        _card("ejections", str(counts.get("member_ejected", 0)), "members ejected"),
        _card("anchors", str(counts.get("anchor_replaced", 0)), "anchors replaced"),
        _card("verified", str(counts.get("verified", 0)), "members verified (still match their anchor)"),
        _card("measured", percent(measured["random"]["share"]) if measured["random"] else "–",
              "served prices wrong at this run's random verifications: " + estimate_text(measured["random"])),
        "</div>",
        "<h2>Scraped</h2>", scraped_table(scraped["chains"]),
    ]
    if scraped["chains"]:
        parts.append(chart(
            "Stores scraped by this run", [c["chain"] for c in scraped["chains"]],
            [Series("anchors", [c["roles"].get("anchor", 0) for c in scraped["chains"]], color="#4e79a7"),
             Series("other stores (verification, named, bootstrap)",
                    [c["scraped"] - c["roles"].get("anchor", 0) for c in scraped["chains"]], color="#f28e2b"),
             Series("failed or suspect", [c["failed"] + c["suspect"] for c in scraped["chains"]], color="#e15759"),
             Series("all stores", [c["stores"] for c in scraped["chains"]], kind="points", color="#333")],
            y_label="stores", x_label="chain", width=560))
    failures = [s for s in scraped["stores"] if s["status"] != "ok"]
    if failures:
        parts.append("<h3>Failed or suspect scrapes</h3><table><tr><th>chain</th><th>store</th><th>status</th>"
                     "<th>attempt</th><th>error</th></tr>" + "".join(
                         f"<tr data-store='{escape(s['store'])}'><td>{escape(s['chain'])}</td>"
                         f"<td>{escape(s['store'])}</td><td class='bad'>{escape(s['status'])}</td>"
                         f"<td class='n'>{s['attempt']}</td><td>{escape(s['error'] or '')}</td></tr>"
                         for s in failures) + "</table>")
    if view["upsert"]:
        keys = ("created", "updated", "unchanged", "ignored_older", "rejected")
        parts.append("<h3>Prices written</h3><table><tr><th>step</th>" + "".join(
            f"<th class='n'>{k.replace('_', ' ')}</th>" for k in keys) + "</tr>" + "".join(
            f"<tr><td>{escape(step)}</td>" + "".join(f"<td class='n'>{c.get(k, 0):,}</td>" for k in keys) + "</tr>"
            for step, c in view["upsert"].items()) + "</table>")
    parts.append(decided_section(base, decisions))
    parts.append("<h2>Measured</h2>")
    parts.append(f"<p>This run's random verifications: {escape(estimate_text(measured['random']))}. "
                 f"Estimate over 14 days to this run: {escape(estimate_text(measured.get('estimate_14d')))}.</p>")
    parts.append(verifications_table(measured["verifications"]))
    return document(f"Run {run['run_id']}", "".join(parts))


def decided_section(base: str, decisions: Mapping[str, Any]) -> str:
    """A run's group events; shared by the full and the pruned run view (group events outlive their run)."""
    counts = decisions["counts"]
    return ("<h2>Decided</h2>"
            + ("<p>" + ", ".join(f"{n} {escape(KIND_LABELS.get(k, k))}" for k, n in counts.items()) + "</p>"
               if counts else "<p class='muted'>No group event recorded by this run.</p>")
            + events_table(base, decisions["events"], show_run=False))


def pruned_text(pruned_by: Mapping[str, Any]) -> str:
    """Why a run's page has only its group events: which retention setting removed the rest."""
    days = pruned_by.get("days")
    setting = f"{pruned_by['setting']} = {days} days" if days is not None else str(pruned_by["setting"])
    return f"This run's records were pruned after {setting} (docs/operations.md); its group events are kept."


def pruned_run_page(base: str, view: Mapping[str, Any]) -> str:
    """A run retention removed: one line saying so and its kept decisions, not tables that would be empty."""
    run = view["run"]
    dated = (f" Logical date {when(run['logical_date'])} UTC, as its group events are dated."
             if run["logical_date"] else "")
    parts = [
        f"<h1>Run {escape(run['run_id'])}</h1>",
        f"<p class='pruned' data-run='{escape(run['run_id'])}' data-pruned='true'>"
        f"{escape(pruned_text(view['pruned_by']))}{escape(dated)} "
        f"<a href='{escape(groups_href(base))}'>All price groups</a></p>",
        decided_section(base, view["decisions"]),
    ]
    return document(f"Run {run['run_id']} (pruned)", "".join(parts))


def _card(key: str, big: str, small: str) -> str:
    return f"<div class='card' data-card='{key}'><b>{escape(big)}</b><span>{escape(small)}</span></div>"


def scraped_table(chains: Iterable[Mapping[str, Any]]) -> str:
    chains = list(chains)
    if not chains:
        return "<p class='muted'>This run scraped nothing (a dry run, or it has not scraped yet).</p>"
    head = ("<tr><th>chain</th><th class='n'>scraped</th><th class='n'>of stores</th><th>why (anchor, or why a "
            "member was planned)</th><th class='n'>ok</th><th class='n'>failed</th><th class='n'>suspect</th>"
            "<th class='n'>items</th><th class='n'>pages</th><th class='n'>HTTP errors</th>"
            "<th class='n'>replayed</th></tr>")
    body = "".join(
        f"<tr data-chain='{escape(c['chain'])}' data-scraped='{c['scraped']}'><td>{escape(c['chain'])}</td>"
        f"<td class='n'>{c['scraped']}</td><td class='n'>{c['stores']}</td>"
        f"<td>{escape(', '.join(f'{role} {n}' for role, n in c['roles'].items() if n))}</td>"
        f"<td class='n'>{c['ok']}</td><td class='n'>{c['failed']}</td><td class='n'>{c['suspect']}</td>"
        f"<td class='n'>{c['items']:,}</td><td class='n'>{c['pages']:,}</td><td class='n'>{c['http_errors']}</td>"
        f"<td class='n'>{c['from_snapshot']}</td></tr>" for c in chains)
    return f"<table class='scraped'>{head}{body}</table>"


def verifications_table(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return "<p class='muted'>No member was verified by this run.</p>"
    return ("<table class='verifications'><tr><th>chain</th><th>store</th><th>why</th><th>group</th><th>anchor</th>"
            "<th class='n'>prices checked</th><th class='n'>served wrong</th></tr>" + "".join(
                f"<tr data-store='{escape(c['store'])}'><td>{escape(c['chain'])}</td><td>{escape(c['store'])}</td>"
                f"<td>{escape(c['reason'])}</td><td>{c['group_id'] if c['group_id'] is not None else ''}</td>"
                f"<td>{escape(c['anchor'] or '')}</td>"
                f"<td class='n'>{'–' if c['checked'] is None else c['checked']}</td>"
                f"<td class='n{' bad' if c['wrong'] else ''}'>{'–' if c['wrong'] is None else c['wrong']}</td></tr>"
                for c in checks) + "</table>")
