"""Charts people read at a glance, as plain SVG strings: axes, units, day labels and a legend.

Pure functions of plain data, no I/O and no JavaScript: the Airflow plugin's
pages and the demo report (reports/demo.html) inline the same markup, so both
work offline and need no front-end build. Every text is escaped.

* `chart`: one category per run or day on the x axis, bars, lines or points
  (with a 95% interval as whiskers) on a y axis with ticks and a unit.
* `group_map`: one cell per store, filled with its group's colour (stores
  alone in their group are grey), the anchor dotted, optionally outlined by a
  second partition (the demo's true zones), so a wrong merge or a split zone
  shows as colours that do not line up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Hashable, Mapping, Sequence

# Fills for groups with members, largest group first: distinct at a glance, dark text readable on each.
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
    "#9c755f", "#86bcb6", "#d4a6c8", "#8cd17d", "#f1ce63", "#a0cbe8", "#ffbe7d", "#d37295",
    "#bab0ac", "#499894", "#fabfd2", "#b6992d",
)
ALONE = "#e6e6e6"  # a store alone in its group of one (ungrouped)
# Outlines for the second partition (true zones in the demo): dark, so they read against any fill.
OUTLINES = ("#1b1b1b", "#c0392b", "#1f5fa8", "#1e8449", "#7d3c98", "#b9770e", "#117a65", "#6e2c00")
INK = "#333"
GRID = "#e3e3e3"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


@dataclass(frozen=True)
class Series:
    """One row of values, one per label; None leaves a gap.

    kind: "bar" (bars side by side when there are several), "line" or
    "points"; low/high, when given, draw each value's interval as a whisker.
    """

    name: str
    values: Sequence[float | None]
    kind: str = "bar"
    color: str = PALETTE[0]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None
    tips: Sequence[str] | None = None  # a tooltip per value, instead of "label: name value"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least `top`."""
    if top <= 0 or not math.isfinite(top):
        top = 1.0
    raw = top / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw - 1e-12)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(n + 1)]


def format_value(value: float, percent: bool = False, step: float | None = None) -> str:
    """A tick (`step` given: as many decimals as the step needs) or a tooltip number; percent for shares."""
    scaled = 100 * value if percent else value
    unit = "%" if percent else ""
    if step is not None:
        basis = 100 * step if percent else step
        decimals = next((d for d in range(4) if abs(round(basis, d) - basis) < 1e-9 * max(1.0, basis)), 3)
    elif not percent and float(value).is_integer():
        decimals = 0
    else:
        decimals = 1 if abs(scaled) >= 10 else 2
    return f"{scaled:,.{decimals}f}{unit}"


def chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str = "",
    x_label: str = "",
    percent: bool = False,
    y_max: float | None = None,
    width: int = 720,
    height: int = 260,
    empty: str = "nothing measured yet",
) -> str:
    """A category chart: x = `labels` (days or runs), y from 0 with ticks; a legend under the title.

    `empty` is written across the plot when there is no value at all.
    """
    n = len(labels)
    left, right, top, bottom = 64, 16, 58, 48 if x_label else 34
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = max([v for s in series for v in (*s.values, *(s.high or ())) if v is not None] + [0.0])
    ticks = nice_ticks(y_max if y_max is not None else highest)
    y_top = ticks[-1]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else None

    def y(v: float) -> float:
        return top + plot_h * (1 - min(v, y_top) / y_top)

    slot = plot_w / max(1, n)

    def x(i: int) -> float:
        return left + slot * (i + 0.5)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" style="{FONT}">',
           f'<title>{escape(title)}</title>',
           f'<text x="{left}" y="16" font-size="14" font-weight="600" fill="{INK}">{escape(title)}</text>']
    out.append(_legend(series, left, 36))
    for t in ticks:  # horizontal grid and y tick labels
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" font-size="11" text-anchor="end" fill="{INK}">'
                   f'{escape(format_value(t, percent, step))}</text>')
    if y_label:
        cy = top + plot_h / 2
        out.append(f'<text x="14" y="{cy:.1f}" font-size="11" text-anchor="middle" fill="{INK}" '
                   f'transform="rotate(-90 14 {cy:.1f})">{escape(y_label)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="{INK}"/>')
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{INK}"/>')
    every = max(1, math.ceil(n / max(1, plot_w // 46)))  # thin the day labels so they never overlap
    shown = set(range(0, n, every))
    if n and n - 1 - max(shown) >= every / 2:
        shown.add(n - 1)  # the newest day is the one people look for
    for i, label in enumerate(labels):
        if i in shown:
            out.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
                       f'stroke="{INK}"/>')
            out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
                       f'fill="{INK}">{escape(label)}</text>')
    if x_label:
        out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" '
                   f'fill="{INK}">{escape(x_label)}</text>')

    bars = [s for s in series if s.kind == "bar"]
    band = slot * 0.8 / max(1, len(bars))
    for b, s in enumerate(bars):
        for i, v in enumerate(s.values[:n]):
            if v is None:
                continue
            bx = left + slot * i + slot * 0.1 + band * b
            out.append(f'<rect x="{bx:.1f}" y="{y(v):.1f}" width="{max(band - 1, 1):.1f}" '
                       f'height="{max(top + plot_h - y(v), 0):.1f}" fill="{s.color}">'
                       f'<title>{escape(_tip(s, i, labels[i], v, percent))}</title></rect>')
    for s in series:
        if s.kind == "line":
            for run in _runs(s.values[:n]):
                points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
                out.append(f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="2"/>')
        if s.kind in ("line", "points") or s.low is not None:
            for i, v in enumerate(s.values[:n]):
                if v is None:
                    continue
                cx = x(i) if s.kind != "bar" else left + slot * i + slot * 0.1 + band * (bars.index(s) + 0.5)
                if s.low is not None and s.high is not None and s.low[i] is not None and s.high[i] is not None:
                    lo, hi = y(s.low[i]), y(s.high[i])
                    out.append(f'<path d="M{cx:.1f},{lo:.1f}V{hi:.1f}M{cx - 4:.1f},{lo:.1f}h8M{cx - 4:.1f},{hi:.1f}h8" '
                               f'stroke="{s.color if s.kind != "bar" else INK}" stroke-width="1.5" fill="none"/>')
                if s.kind != "bar":
                    radius = 3.5 if s.kind == "points" else 2.5
                    out.append(f'<circle cx="{cx:.1f}" cy="{y(v):.1f}" r="{radius}" fill="{s.color}">'
                               f'<title>{escape(_tip(s, i, labels[i], v, percent))}</title></circle>')
    if not any(v is not None for s in series for v in s.values[:n]):
        out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" font-size="12" '
                   f'text-anchor="middle" fill="#777">{escape(empty)}</text>')
    out.append("</svg>")
    return "".join(out)


def _tip(s: Series, i: int, label: str, v: float, percent: bool) -> str:
    if s.tips is not None and i < len(s.tips) and s.tips[i]:
        return s.tips[i]
    text = f"{label}: {s.name} {format_value(v, percent)}"
    if s.low is not None and s.high is not None and s.low[i] is not None and s.high[i] is not None:
        text += f" (95% interval {format_value(s.low[i], percent)}–{format_value(s.high[i], percent)})"
    return text


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive non-None stretches, so a line breaks where a value is missing."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if r]


def _legend(series: Sequence[Series], left: int, baseline: int) -> str:
    parts, cx = [], left
    for s in series:
        if s.kind == "bar":
            mark = f'<rect x="{cx}" y="{baseline - 9}" width="12" height="10" fill="{s.color}"/>'
        elif s.kind == "line":
            mark = f'<line x1="{cx}" x2="{cx + 12}" y1="{baseline - 4}" y2="{baseline - 4}" stroke="{s.color}" stroke-width="2"/>'
        else:
            mark = f'<circle cx="{cx + 6}" cy="{baseline - 4}" r="3.5" fill="{s.color}"/>'
        if s.low is not None:
            mark += (f'<path d="M{cx + 6},{baseline - 10}V{baseline + 2}" stroke="{s.color if s.kind != "bar" else INK}" '
                     f'stroke-width="1.5"/>')
        name = s.name + (" (whiskers: 95% interval)" if s.low is not None else "")
        parts.append(f'{mark}<text x="{cx + 16}" y="{baseline}" font-size="11" fill="{INK}">{escape(name)}</text>')
        cx += 16 + 6 * len(name) + 18
    return "".join(parts)


# -- the group map --------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One store: its code, its group (the fill), whether it anchors it, and an optional outline key."""

    store: str
    group: Hashable
    anchor: bool = False
    outline: Hashable | None = None  # e.g. the store's true zone in the demo
    note: str = ""  # extra tooltip text (last verification, deviations ...)


@dataclass(frozen=True)
class MapRow:
    label: str
    cells: Sequence[Cell]


def group_colors(sizes: Mapping[Hashable, int]) -> dict[Hashable, str]:
    """A fill per group: groups with members get PALETTE colours, largest first (ties by key); alone: grey.

    With more groups than colours the palette repeats (the tooltip and the
    table still name the group).
    """
    ranked = sorted((g for g, n in sizes.items() if n > 1), key=lambda g: (-sizes[g], str(g)))
    colors = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(ranked)}
    colors.update({g: ALONE for g, n in sizes.items() if n <= 1})
    return colors


def group_map(
    title: str,
    rows: Sequence[MapRow],
    colors: Mapping[Hashable, str],
    *,
    group_names: Mapping[Hashable, str] | None = None,
    outline_name: str = "",
    cell: int = 20,
    gap: int = 4,
    width: int = 720,
) -> str:
    """Stores as cells in rows; fill = group, a dot = its anchor, outline (when given) = `outline_name`.

    `group_names` labels the legend's swatches (groups with members only; the
    stores alone share one grey swatch).
    """
    label_w = 10 + 7 * max([len(r.label) for r in rows] + [4])
    per_row = max(1, max([len(r.cells) for r in rows] + [1]))
    pitch = cell + gap
    map_w = label_w + per_row * pitch
    outlines = _outline_colors(rows)
    legend = _map_legend(colors, group_names or {}, outlines, outline_name, max(width, map_w))
    legend_h = legend[1]
    top = 26
    height = top + len(rows) * pitch + 10 + legend_h
    w = max(width, map_w + 10)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="group-map" width="{w}" height="{height}" '
           f'viewBox="0 0 {w} {height}" role="img" aria-label="{escape(title)}" style="{FONT}">',
           f'<title>{escape(title)}</title>',
           f'<text x="0" y="16" font-size="14" font-weight="600" fill="{INK}">{escape(title)}</text>']
    for r, row in enumerate(rows):
        ry = top + r * pitch
        out.append(f'<text x="0" y="{ry + cell * 0.7:.1f}" font-size="11" fill="{INK}">{escape(row.label)}</text>')
        for c, store in enumerate(row.cells):
            cx = label_w + c * pitch
            fill = colors.get(store.group, ALONE)
            if store.outline is not None:
                stroke = f'stroke="{outlines[store.outline]}" stroke-width="2.5"'
            else:
                stroke = 'stroke="#999" stroke-width="0.5"'
            name = (group_names or {}).get(store.group, f"group {store.group}")
            tip = f"{store.store}: {'anchor of ' if store.anchor else ''}{name}"
            if store.outline is not None:
                tip += f"; {outline_name or 'outline'} {store.outline}"
            if store.note:
                tip += f"; {store.note}"
            out.append(f'<g class="store" data-store="{escape(store.store)}" data-group="{escape(str(store.group))}">'
                       f'<title>{escape(tip)}</title>'
                       f'<rect x="{cx + 1}" y="{ry + 1}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                       f'fill="{fill}" {stroke}/>')
            if store.anchor:
                out.append(f'<circle cx="{cx + cell / 2}" cy="{ry + cell / 2}" r="{cell / 5:.1f}" fill="{INK}" '
                           f'stroke="#fff" stroke-width="1.5"/>')
            out.append("</g>")
    out.append(f'<g transform="translate(0 {top + len(rows) * pitch + 10})">{legend[0]}</g>')
    out.append("</svg>")
    return "".join(out)


def _outline_colors(rows: Sequence[MapRow]) -> dict[Hashable, str]:
    keys: list[Hashable] = []
    for row in rows:
        for c in row.cells:
            if c.outline is not None and c.outline not in keys:
                keys.append(c.outline)
    return {k: OUTLINES[i % len(OUTLINES)] for i, k in enumerate(keys)}


def _map_legend(
    colors: Mapping[Hashable, str], names: Mapping[Hashable, str], outlines: Mapping[Hashable, str],
    outline_name: str, width: int,
) -> tuple[str, int]:
    """The legend's markup and height: group swatches, the grey 'alone', the anchor dot, outline keys."""
    items: list[tuple[str, str]] = []  # (mark markup at 0,0, text)
    for g, color in colors.items():
        if color != ALONE:
            items.append((f'<rect x="0" y="-10" width="12" height="12" rx="2" fill="{color}"/>',
                          names.get(g, f"group {g}")))
    if any(c == ALONE for c in colors.values()):
        items.append((f'<rect x="0" y="-10" width="12" height="12" rx="2" fill="{ALONE}" stroke="#999" '
                      f'stroke-width="0.5"/>', "alone in its group"))
    items.append((f'<circle cx="6" cy="-4" r="4" fill="{INK}"/>', "anchor"))
    for key, color in outlines.items():
        items.append((f'<rect x="1" y="-9" width="10" height="10" rx="2" fill="#fff" stroke="{color}" '
                      f'stroke-width="2.5"/>', f"{outline_name or 'outline'} {key}"))
    out, x, line = [], 0, 0
    for mark, text in items:
        w = 20 + 6.2 * len(text) + 14
        if x and x + w > width:
            x, line = 0, line + 1
        out.append(f'<g transform="translate({x:.0f} {line * 18 + 12})">{mark}'
                   f'<text x="17" y="0" font-size="11" fill="{INK}">{escape(text)}</text></g>')
        x += w
    return "".join(out), (line + 1) * 18 + 4
