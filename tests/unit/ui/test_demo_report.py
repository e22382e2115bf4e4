"""The demo report draws its days with the same charts as the Airflow views."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pricegroups.demo.report import DayMetrics, day_charts, html_report


def _day(day: int, scraped: int, groups: int) -> DayMetrics:
    return DayMetrics(day=day, run_id=f"r{day}", scraped=scraped, stores=150, groups=groups, true_zones=12, ari=0.9,
                      inferred=1000, wrong_inferred=2, observed=10, wrong_observed=0, created=5, updated=7,
                      unchanged=100, ignored_older=0, merges=0, ejections=0, anchor_changes=0, wall_s=1.0,
                      checked=300, wrong_checked=1)


def test_every_chart_has_day_labels_units_and_a_legend():
    days = [_day(0, 150, 40), _day(1, 35, 13), _day(2, 33, 12)]
    charts = day_charts(days)
    assert len(charts) == 5
    for svg in charts:
        words = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
        assert {"0", "1", "2", "simulated day"} <= set(words)
    scraped = ET.fromstring(charts[0])
    assert "Stores scraped per day" in scraped.findtext("{http://www.w3.org/2000/svg}title")
    assert "Mar" not in charts[0] and "stores" in charts[0] and "all stores" in charts[0]
    assert "0.20%" in charts[3]  # wrong shares as percentages: 2 of 1,000


def test_the_report_inlines_the_charts_and_the_truth_maps():
    page = html_report([_day(0, 150, 40)], {"days": 1}, maps="<svg class='group-map'></svg>")
    assert page.count("<svg") == 6 and "Group maps: found groups against the truth" in page
    assert "Group maps" not in html_report([_day(0, 150, 40)], {"days": 1})
