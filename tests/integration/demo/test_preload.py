"""A preloaded first week (demo/preload.py) is a state the DAG leaves: grouped by zone, and day 7 plans a normal day."""

from __future__ import annotations

import psycopg

from pricegroups.demo.generate import scaled_scenario
from pricegroups.demo.preload import logical_date, preload
from pricegroups.grouping.planning import plan_scrape
from pricegroups.invariants import check_invariants
from pricegroups.settings import Settings


def test_a_preloaded_week_is_grouped_by_zone_and_plans_anchors_plus_the_budget(db_url, make_demo_site, tmp_path,
                                                                               monkeypatch):
    scenario = scaled_scenario(60, 80)
    site = make_demo_site(scenario)
    monkeypatch.setenv("PRICEGROUPS_SNAPSHOT_ROOT", str(tmp_path))  # the pipeline's steps read the environment
    settings = Settings().with_overrides({"snapshot_root": str(tmp_path), "requests_per_second": 0})
    with psycopg.connect(db_url) as conn:
        history = preload(conn, scenario, site.base_url, site.set_day, settings)
        results = {r.name: r for r in check_invariants(conn, settings=settings)}
        assert not results["groups"].violations and not results["effective_prices"].violations
        groups = conn.execute("SELECT count(*) FROM store_groups").fetchone()[0]
        assert groups == sum(len(zones) for zones in history.anchors.values())
        reasons: dict[int, str] = {}
        planned = plan_scrape(conn, logical_date(scenario, 7), settings, reasons=reasons)
        members = sum(len(history.members(c)) for c in scenario.chains)
        assert "bootstrap" not in reasons.values()
        assert len(planned) == groups + len(reasons) and len(reasons) <= members // 5
