"""The demo report's group maps: found groups over the true zones, from the database."""

from __future__ import annotations

import re

from pricegroups.demo.report import truth_maps
from tests.integration.ui.history import build


class Truth:
    """The one Scenario method truth_maps reads."""

    def __init__(self, zones: dict[str, list[str]]):
        self.zones = zones

    def true_zones(self, chain: str, day: int) -> dict[str, list[str]]:
        return self.zones


def test_a_row_per_true_zone_each_store_filled_by_its_group_and_outlined_by_its_zone(conn):
    history = build(conn)
    zone = history.world.zone_of
    codes = history.codes
    truth = Truth({z: [codes[s] for s in history.world.stores if zone[s] == z] for z in ("A", "B")})
    svg = truth_maps(conn, truth, 1)
    cells = re.findall(r'data-store="([^"]+)" data-group="(\d+)"><title>[^<]*</title><rect [^>]*stroke="(#\w+)"', svg)
    assert len(cells) == 10
    group_of = dict(conn.execute("SELECT code, group_id::text FROM stores").fetchall())
    assert all(group_of[store] == group for store, group, _ in cells)
    strokes = {z: {stroke for store, _, stroke in cells if store in truth.zones[z]} for z in ("A", "B")}
    assert len(strokes["A"]) == 1 and len(strokes["B"]) == 1 and strokes["A"] != strokes["B"]
    assert "zone A" in svg and "zone B" in svg and "true zone A" in svg
    assert svg.count("<circle") >= 2  # the two anchors (and the legend's dot)
