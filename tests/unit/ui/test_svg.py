"""The SVG charts and the group map: readable axes, labels and legends, well-formed and escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from pricegroups.ui.svg import ALONE, PALETTE, Cell, MapRow, Series, chart, format_value, group_colors, group_map, nice_ticks

NS = {"svg": "http://www.w3.org/2000/svg"}


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("top, ticks", [
    (150, [0, 50, 100, 150]),
    (7, [0, 2, 4, 6, 8]),
    (1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (0.0123, [0, 0.0025, 0.005, 0.0075, 0.01, 0.0125]),
    (0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
])
def test_ticks_start_at_zero_and_step_roundly_past_the_top(top, ticks):
    assert nice_ticks(top) == pytest.approx(ticks)


def test_tick_labels_carry_the_unit_and_as_many_decimals_as_the_step_needs():
    assert [format_value(t, percent=True, step=0.0025) for t in (0, 0.0025, 0.01)] == ["0.00%", "0.25%", "1.00%"]
    assert [format_value(t, step=50) for t in (0, 50, 1500)] == ["0", "50", "1,500"]
    assert format_value(0.00183, percent=True) == "0.18%"
    assert format_value(23) == "23"


def test_chart_has_title_axes_ticks_day_labels_legend_and_a_bar_per_value():
    labels = ["Mar 2", "Mar 3", "Mar 4"]
    svg = chart("Stores scraped per run", labels,
                [Series("scraped", [150, 40, 35]), Series("all stores", [150, 150, 150], kind="line", color="#333")],
                y_label="stores", x_label="run (logical date)")
    words = texts(svg)
    assert words[0] == "Stores scraped per run"
    assert {"scraped", "all stores", "stores", "run (logical date)"} <= set(words)
    assert set(labels) <= set(words)
    assert {"0", "50", "100", "150"} <= set(words)  # y ticks
    root = ET.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("svg:title", NS) is not None]
    assert [b.find("svg:title", NS).text for b in bars] == ["Mar 2: scraped 150", "Mar 3: scraped 40", "Mar 4: scraped 35"]
    assert len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) == 1


def test_a_taller_value_gives_a_taller_bar():
    svg = chart("t", ["a", "b"], [Series("n", [10, 40])])
    heights = [float(h) for h in re.findall(r'height="([^"]+)" fill="[^"]+"><title>', svg)]
    assert heights[1] == pytest.approx(4 * heights[0], rel=0.01)


def test_intervals_are_whiskers_and_named_in_the_legend_and_tooltip():
    svg = chart("Wrong served prices", ["d0", "d1"],
                [Series("per run", [0.002, None], kind="points", low=[0.001, None], high=[0.004, None])], percent=True)
    assert "per run (whiskers: 95% interval)" in texts(svg)
    assert "d0: per run 0.20% (95% interval 0.10%–0.40%)" in svg
    assert svg.count("<circle") == 2  # the legend's and the one value; None leaves a gap
    assert "0.40%" in texts(svg) or "0.4%" in texts(svg)


def test_many_days_are_labelled_sparsely_but_the_newest_always():
    labels = [f"d{i}" for i in range(60)]
    words = texts(chart("t", labels, [Series("n", list(range(60)))]))
    shown = [w for w in words if w in labels]
    assert 5 <= len(shown) <= 15 and "d0" in shown and "d59" in shown


def test_text_is_escaped():
    svg = chart("<b>&", ["<x>"], [Series("a&b", [1])])
    ET.fromstring(svg)  # well-formed
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg


def test_an_empty_chart_says_so():
    assert "nothing measured yet" in texts(chart("t", [], [Series("n", [])]))
    assert "no runs yet" in texts(chart("t", ["d0"], [Series("n", [None])], empty="no runs yet"))
    assert "nothing measured yet" not in texts(chart("t", ["d0"], [Series("n", [0])]))


def test_group_colors_rank_groups_by_size_and_grey_out_stores_alone():
    colors = group_colors({7: 3, 9: 12, 4: 1, 5: 3})
    assert colors[9] == PALETTE[0] and colors[5] == PALETTE[1] and colors[7] == PALETTE[2]
    assert colors[4] == ALONE


def test_group_map_has_a_cell_per_store_a_dot_per_anchor_and_outlines_per_zone():
    rows = [MapRow("zone a", [Cell("S1", 1, anchor=True, outline="a"), Cell("S2", 1, outline="a")]),
            MapRow("zone b", [Cell("S3", 1, outline="b"), Cell("S4", 2, anchor=True, outline="b")])]
    colors = group_colors({1: 3, 2: 1})
    svg = group_map("freshmart", rows, colors, group_names={1: "group 1 (anchor S1)"}, outline_name="true zone")
    root = ET.fromstring(svg)
    cells = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "store"]
    assert [c.get("data-store") for c in cells] == ["S1", "S2", "S3", "S4"]
    assert [c.get("data-group") for c in cells] == ["1", "1", "1", "2"]
    fills = [c.find("svg:rect", NS).get("fill") for c in cells]
    assert fills == [colors[1]] * 3 + [ALONE]
    strokes = [c.find("svg:rect", NS).get("stroke") for c in cells]
    assert strokes[0] == strokes[1] != strokes[2] == strokes[3]  # a wrong merge: one fill, two outlines
    assert sum(1 for c in cells if c.find("svg:circle", NS) is not None) == 2
    words = texts(svg)
    assert {"group 1 (anchor S1)", "alone in its group", "anchor", "true zone a", "true zone b"} <= set(words)
    assert cells[2].find("svg:title", NS).text == "S3: group 1 (anchor S1); true zone b"
