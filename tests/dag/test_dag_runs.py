"""Real Airflow runs of pricegroups_daily with dag.test(): embedded PostgreSQL, the demo site on loopback.

One history is played once per module on the compact scenario (34 stores,
three chains, three layouts): a bootstrap day, days on which one anchor's
scrape keeps failing until its group hands the anchor role over (the
stale-anchor branch then re-scrapes the new anchor), a run restricted to a
store that moved zone, a re-run of that same run, a dry run and a backfill of
an earlier date, and runs whose scrape tasks or plan fail hard (the functions
patched in this process, which dag.test() runs the tasks in). Each test checks
one rule against what was recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, time as dtime, timezone
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import sql

from pricegroups import db
from pricegroups.demo.generate import compact_scenario
from pricegroups.demo.model import Event
from pricegroups.demo.chains import register_demo_chains
from pricegroups.demo.report import adjusted_rand_index
from pricegroups.demo.server import DemoSite
from pricegroups.grouping.lateness import usually_late
from pricegroups.invariants import check_invariants, price_times, regressions
from pricegroups.migrate import migrate
from pricegroups.pipeline import DEFAULT_PARAMS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    """Everything a run may change, compared whole."""
    return {
        "prices": conn.execute(
            "SELECT product_id, store_id, price, was_price, on_special, scraped_at, xmin::text FROM prices ORDER BY 1, 2"
        ).fetchall(),
        "stores": conn.execute(
            "SELECT store_id, group_id, active, last_scraped_at, consecutive_failures FROM stores ORDER BY 1"
        ).fetchall(),
        "groups": conn.execute("SELECT group_id, anchor_store_id FROM store_groups ORDER BY 1").fetchall(),
        "events": conn.execute("SELECT count(*) FROM group_events WHERE kind <> 'verified'").fetchone()[0],
        "scrapes": conn.execute("SELECT count(*) FROM scrape_log").fetchone()[0],
        "runs": conn.execute("SELECT count(*) FROM runs").fetchone()[0],
        "products": conn.execute("SELECT count(*) FROM products").fetchone()[0],
    }


def _invariants(conn: psycopg.Connection, before_prices: dict) -> None:
    """DESIGN.md §6, checked after every run by the one invariant checker (`python -m pricegroups check`)."""
    failed = {r.name: r.violations for r in check_invariants(conn) if not r.ok}
    assert failed == {}
    assert regressions(before_prices, price_times(conn)) == [], "a stored price got older"
    conn.rollback()


def _ari(conn: psycopg.Connection, scenario, day: int) -> float:
    truth, found = {}, {}
    for chain, code, group in conn.execute(
        "SELECT c.code, s.code, s.group_id FROM stores s JOIN chains c USING (chain_id) WHERE s.active"
    ):
        if scenario.is_open(chain, code, day):
            truth[(chain, code)] = scenario.zone_of(chain, code, day)
            found[(chain, code)] = group
    return adjusted_rand_index({k: f"{k[0]}:{v}" for k, v in truth.items()}, found)


class History:
    def __init__(self, dag, site: DemoSite, conninfo: str, scenario) -> None:
        self.dag, self.site, self.conninfo, self.scenario = dag, site, conninfo, scenario
        self.runs: dict[str, dict[str, Any]] = {}

    def run(self, name: str, day: int, conf: dict | None = None) -> dict[str, Any]:
        self.site.set_day(day)
        logical_date = datetime.combine(self.scenario.date_of(day), dtime(6), tzinfo=timezone.utc)
        with psycopg.connect(self.conninfo) as conn:
            before = _snapshot(conn)
            before_prices = price_times(conn)
        # every param given each time: in-process dag.test() keeps params from the previous call
        full_conf = {**DEFAULT_PARAMS, **(conf or {})}
        dag_run = self.dag.test(logical_date=logical_date, run_conf=full_conf)
        states = {}
        for ti in dag_run.get_task_instances():
            states.setdefault(ti.task_id, set()).add(str(getattr(ti.state, "value", ti.state)))
        with psycopg.connect(self.conninfo) as conn:
            after = _snapshot(conn)
            _invariants(conn, before_prices)
            summary = conn.execute("SELECT summary FROM runs WHERE run_id = %s", (dag_run.run_id,)).fetchone()
            scraped = {r[0] for r in conn.execute(
                "SELECT s.code FROM scrape_log l JOIN stores s USING (store_id) WHERE l.run_id = %s", (dag_run.run_id,)
            )}
            events = conn.execute(
                "SELECT kind, store_id, other_store_id FROM group_events WHERE run_id = %s", (dag_run.run_id,)
            ).fetchall()
            ari = _ari(conn, self.scenario, day)
        record = {"state": str(getattr(dag_run.state, "value", dag_run.state)), "states": states, "before": before,
                  "after": after, "summary": summary[0] if summary else None, "scraped": scraped,
                  "events": events, "ari": ari, "run_id": dag_run.run_id}
        self.runs[name] = record
        return record

    def store_id(self, code: str) -> int:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute("SELECT store_id FROM stores WHERE code = %s", (code,)).fetchone()[0]


@pytest.fixture(scope="module")
def history(airflow_db, server_url, template_database, tmp_path_factory):
    scenario = compact_scenario()
    name = f"pgt_dag_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                        sql.Identifier(template_database)))
    conninfo = db.with_database(server_url, name)
    saved = dict(os.environ)
    os.environ["AIRFLOW_CONN_PRICEGROUPS_DB"] = db.airflow_connection_json(conninfo)
    os.environ["PRICEGROUPS_REQUESTS_PER_SECOND"] = "0"
    os.environ["PRICEGROUPS_SCRAPE_RETRIES"] = "0"  # a chain that is down fails at once (no 140 s of backoff)
    os.environ["PRICEGROUPS_SNAPSHOT_ROOT"] = str(tmp_path_factory.mktemp("snapshots"))
    subprocess.run([sys.executable, "-m", "airflow", "pools", "set", "pricegroups_scrape", "4", "scrapes"],
                   check=True, capture_output=True)
    site = DemoSite(scenario, day=0)
    base_url = site.start(port=0)
    try:
        with psycopg.connect(conninfo) as conn:
            migrate(conn)
            register_demo_chains(conn, base_url)
            conn.commit()
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert bag.import_errors == {}
        h = History(bag.dags["pricegroups_daily"], site, conninfo, scenario)
        _play(h)
        yield h
    finally:
        site.stop()
        os.environ.clear()
        os.environ.update(saved)
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _failing_anchor(h: History) -> str:
    """A freshmart anchor with members that is not the store the scenario moves on day 3."""
    with psycopg.connect(h.conninfo) as conn:
        rows = conn.execute(
            """SELECT a.code FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
               JOIN chains c ON c.chain_id = g.chain_id
               WHERE c.code = 'freshmart' AND (SELECT count(*) FROM stores s WHERE s.group_id = g.group_id) >= 3
               ORDER BY a.code"""
        ).fetchall()
    mover = h.scenario.events_on(3, "freshmart")[0].store if h.scenario.events_on(3, "freshmart") else None
    return next(code for (code,) in rows if code != mover)


def _member_to_move(h: History, chain: str, day: int) -> tuple[str, tuple[str, str]]:
    """A member of a group of three or more, and (its zone, another regular zone with stores) to move it to."""
    zones = {z.code: z for z in h.scenario.chain(chain).zones}
    regular = sorted(code for code, z in zones.items() if not z.independent and z.twin_of is None
                     and any(h.scenario.zone_of(chain, s.code, day) == code for s in h.scenario.chain(chain).stores))
    with psycopg.connect(h.conninfo) as conn:
        members = [code for (code,) in conn.execute(
            """SELECT s.code FROM stores s JOIN store_groups g ON g.group_id = s.group_id
               JOIN chains c ON c.chain_id = s.chain_id
               WHERE c.code = %s AND s.store_id <> g.anchor_store_id
                 AND (SELECT count(*) FROM stores o WHERE o.group_id = s.group_id) >= 3
               ORDER BY s.code""", (chain,))]
    for code in members:
        zone = h.scenario.zone_of(chain, code, day)
        if zone in regular:
            return code, (zone, next(z for z in regular if z != zone))
    raise AssertionError(f"no {chain} member of a regular zone to move")


def _play(h: History) -> None:
    h.run("day0", 0)
    h.failing = _failing_anchor(h)
    h.site.add_event(Event("server_error", "freshmart", store=h.failing, count=None))
    for day in (1, 2, 3):
        h.run(f"day{day}", day)
    h.mover = next(e.store for e in h.scenario.events_on(3, "freshmart") if e.kind == "store_moves")
    h.run("moved", 4, {"stores": [h.mover]})
    h.run("moved_again", 4, {"stores": [h.mover]})
    h.run("moved_thrice", 4, {"stores": [h.mover]})
    h.run("day4", 4)
    h.run("dry", 5, {"full_scrape": True, "dry_run": True})
    h.run("backfill", 2, {"stores": [h.mover]})
    h.run("bad_store", 6, {"stores": ["NOPE999"]})
    h.site.clear_events()
    h.spot_mover, h.spot_zones = _member_to_move(h, "greengrocer", 6)
    h.site.add_event(Event("store_moves", "greengrocer", day=6, store=h.spot_mover, zone=h.spot_zones[1]))
    h.run("spot_move", 6)
    h.site.clear_events()
    h.site.add_event(Event("server_error", "greengrocer", count=None))  # the whole site, locator included
    h.run("chain_down", 7)
    h.site.clear_events()
    with _scrape_fails(before="valueway", after="freshmart"):
        h.run("scrape_crash", 8)
    with _plan_fails():
        h.run("plan_crash", 8)


@contextmanager
def _scrape_fails(before: str, after: str) -> Iterator[None]:
    """One chain's scrape tasks fail before they record anything (a bug), another's after (a lost worker)."""
    from pricegroups import pipeline

    real = pipeline.scrape

    def scrape(conn, context, batch, *args, **kwargs):
        main = kwargs.get("step", "scrape") == "scrape"
        if main and batch["chain"] == before:
            raise RuntimeError(f"a bug in the scraper ({before})")
        result = real(conn, context, batch, *args, **kwargs)
        if main and batch["chain"] == after:
            raise RuntimeError(f"worker lost after {after}'s batch recorded its outcome")
        return result

    pipeline.scrape = scrape  # dag.test() runs the tasks in this process
    try:
        yield
    finally:
        pipeline.scrape = real


@contextmanager
def _plan_fails() -> Iterator[None]:
    from airflow.sdk.exceptions import AirflowFailException

    from pricegroups import pipeline

    real = pipeline.plan

    def plan(conn, context):
        raise AirflowFailException("a bug in the planner")  # no retry: the test does not wait for one

    pipeline.plan = plan
    try:
        yield
    finally:
        pipeline.plan = real


def test_every_run_succeeds(history):
    failing = ("bad_store", "chain_down", "scrape_crash", "plan_crash")
    good = {name: r["state"] for name, r in history.runs.items() if name not in failing}
    assert good == dict.fromkeys(good, "success")


def test_a_scrape_task_that_fails_hard_fails_the_run_naming_its_batches(history):
    crash = history.runs["scrape_crash"]
    assert crash["state"] == "failed"
    assert "failed" in crash["states"]["scrape"] and crash["states"]["summary"] == {"failed"}
    for task in ("resolve", "upsert", "health_check_batches", "merge_groups"):
        assert crash["states"][task] == {"success"}, task  # the other chains go on
    totals = crash["summary"]["totals"]
    assert totals["chains_down"] == []
    assert {key.split(":")[0] for key in totals["batches_not_scraped"]} == {"valueway", "freshmart"}
    chains = {code.split("/")[0] for code in _qualified(history, crash["scraped"])}
    assert {"freshmart", "greengrocer"} <= chains, "freshmart's batch ran, then its task failed"


def test_a_failed_plan_fails_the_run(history):
    crash = history.runs["plan_crash"]
    assert crash["state"] == "failed"
    assert crash["states"]["plan"] == {"failed"} and crash["states"]["summary"] == {"upstream_failed"}
    assert crash["scraped"] == set()


def test_one_chain_down_fails_its_own_task_and_the_run_while_the_others_are_grouped(history):
    down = history.runs["chain_down"]
    assert down["state"] == "failed"
    assert down["states"]["scrape"] == {"failed", "success"}
    assert down["states"]["summary"] == {"failed"}, "the summary is written, then the run turns red"
    for task in ("resolve", "upsert", "health_check_batches", "merge_groups"):
        assert down["states"][task] == {"success"}, task
    assert "success" in down["states"]["health_check"]
    assert down["summary"]["totals"]["chains_down"] == ["greengrocer"]
    chains = {code.split("/")[0] for code in _qualified(history, down["scraped"])}
    assert {"freshmart", "valueway"} <= chains
    def greengrocer(record):
        return {g: sorted(m) for g, m in _groups_by_code(history, record).items() if m[0][0] == "greengrocer"}

    assert greengrocer(down) == greengrocer(history.runs["spot_move"]), "a chain not scraped keeps its groups"


def _qualified(history, codes) -> set[str]:
    with psycopg.connect(history.conninfo) as conn:
        chain_of = dict(conn.execute("SELECT s.code, c.code FROM stores s JOIN chains c USING (chain_id)").fetchall())
    return {f"{chain_of[c]}/{c}" for c in codes}


def test_a_bad_param_fails_the_run_at_start_and_nothing_else_runs(history):
    bad = history.runs["bad_store"]
    assert bad["state"] == "failed"
    assert bad["states"]["start"] == {"failed"}
    assert all(states <= {"upstream_failed", "skipped", "removed"}
               for task, states in bad["states"].items() if task != "start"), bad["states"]
    assert bad["after"] == bad["before"], "a refused run writes nothing"


def test_bootstrap_scrapes_every_store_and_finds_the_true_zones(history):
    day0 = history.runs["day0"]
    assert len(day0["scraped"]) == 34
    assert day0["ari"] == pytest.approx(1.0)
    assert day0["summary"]["totals"]["upsert"]["created"] > 20_000
    assert any(kind == "merged" for kind, _, _ in day0["events"])


def test_a_normal_day_scrapes_about_one_store_per_group(history):
    day1 = history.runs["day1"]
    groups = len(day1["after"]["groups"])
    with psycopg.connect(history.conninfo) as conn:
        drawn = conn.execute(
            """SELECT c.code, v.reason FROM verifications v JOIN chains c USING (chain_id)
               WHERE v.run_id = %s ORDER BY 1""",
            (day1["run_id"],),
        ).fetchall()
    # anchors plus the verification budget, spent every run (DESIGN.md §9): ceil(10%) of each
    # chain's members, here one per chain, drawn at random (half the budget, rounded up)
    assert [chain for chain, _ in drawn] == sorted({chain for chain, _ in drawn}) and len(drawn) == 3
    assert {reason for _, reason in drawn} == {"random"}
    assert len(day1["scraped"]) <= groups + len(drawn)
    assert len(day1["scraped"]) <= 34 / 2


def test_a_failed_scrape_changes_nothing_about_that_store(history):
    failing = history.store_id(history.failing)
    day1 = history.runs["day1"]
    prices = lambda snap: [r for r in snap["prices"] if r[1] == failing]  # noqa: E731
    assert history.failing in day1["scraped"]
    assert prices(day1["after"]) == prices(day1["before"])
    assert [e for e in day1["events"] if failing in (e[1], e[2])] == []
    group_of = lambda snap: {r[0]: r[1] for r in snap["stores"]}[failing]  # noqa: E731
    assert group_of(day1["after"]) == group_of(day1["before"])


def test_stale_anchor_branch_runs_only_when_an_anchor_is_stale(history):
    assert history.runs["day1"]["states"]["rescrape_anchors"] == {"skipped"}
    assert history.runs["day1"]["states"]["anchors_current"] == {"success"}
    day3 = history.runs["day3"]
    assert any(kind == "anchor_replaced" for kind, _, _ in day3["events"])
    assert "success" in day3["states"]["rescrape_anchors"]
    assert day3["states"]["anchors_current"] == {"skipped"}
    assert day3["summary"]["totals"]["rescrape"]["ok"] >= 1


def test_a_run_restricted_to_some_stores_scrapes_only_them_and_their_anchors(history):
    moved = history.runs["moved"]
    assert history.mover in moved["scraped"]
    assert len(moved["scraped"]) <= 2  # the named store and its group's anchor


def _cross_zone_pairs(history, record, day: int) -> list[tuple[str, str]]:
    """Pairs of open stores grouped together although their true zones differ, as the run left them."""
    with psycopg.connect(history.conninfo) as conn:
        codes = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT s.store_id, c.code, s.code FROM stores s JOIN chains c USING (chain_id)")}
    members: dict[int, list[str]] = {}
    zone: dict[str, str] = {}
    for store_id, group_id, active, *_ in record["after"]["stores"]:
        chain, code = codes[store_id]
        if active and history.scenario.is_open(chain, code, day):
            zone[code] = history.scenario.zone_of(chain, code, day)
            members.setdefault(group_id, []).append(code)
    return [(a, b) for group in members.values() for a in group for b in group if a < b and zone[a] != zone[b]]


def test_after_a_zone_move_no_group_mixes_zones_once_members_are_reverified(history):
    day4 = history.runs["day4"]
    with psycopg.connect(history.conninfo) as conn:
        codes = dict(conn.execute("SELECT store_id, code FROM stores").fetchall())
    story = {name: ([(k, codes.get(a), codes.get(b)) for k, a, b in r["events"] if k != "verified"],
                    sorted(r["scraped"]), (r["summary"] or {}).get("totals", {}).get("health"))
             for name, r in history.runs.items()}
    pairs = _cross_zone_pairs(history, day4, 4)
    assert pairs == [], "\n".join(f"{k}: {v}" for k, v in story.items() if k != "day0") + f"\n{pairs}"
    assert day4["ari"] >= 0.9


def test_rerunning_the_same_date_and_inputs_changes_nothing_further(history):
    # The first run for the mover moved it into the group of its new zone, so the second one also
    # scrapes that group's anchor (a `stores` run scrapes the stores and their anchors): new data
    # for that date, nothing else. From then on the inputs are the same and nothing changes.
    again, thrice = history.runs["moved_again"], history.runs["moved_thrice"]
    assert again["events"] == [] and again["after"]["groups"] == again["before"]["groups"]
    for key in ("prices", "stores", "groups", "events", "products"):
        assert thrice["after"][key] == thrice["before"][key], key


def test_dry_run_writes_nothing(history):
    dry = history.runs["dry"]
    assert dry["after"] == dry["before"]
    assert dry["states"]["scrape"] == {"skipped"} or dry["states"].get("scrape") is None


def test_backfill_of_an_earlier_date_never_makes_a_price_older(history):
    back = history.runs["backfill"]
    before = {(r[0], r[1]): r for r in back["before"]["prices"]}
    after = {(r[0], r[1]): r for r in back["after"]["prices"]}
    assert set(after) <= set(before) | set()
    for key, row in after.items():
        assert row[:6] == before[key][:6], key
    # group decisions belong to the newest data: a backfill leaves the groups alone
    assert back["events"] == []
    assert back["after"]["groups"] == back["before"]["groups"]
    assert back["states"]["health_check"] == {"skipped"}
    assert history.mover in back["scraped"]


def _groups_by_code(history, record) -> dict[int, list[tuple[str, str]]]:
    with psycopg.connect(history.conninfo) as conn:
        codes = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT s.store_id, c.code, s.code FROM stores s JOIN chains c USING (chain_id)")}
    groups: dict[int, list[tuple[str, str]]] = {}
    for store_id, group_id, active, *_ in record["after"]["stores"]:
        if active:
            groups.setdefault(group_id, []).append(codes[store_id])
    return groups


def test_near_twin_price_lists_are_kept_apart(history):
    """fm-z1t and vw-z2t differ from their twins on about 1.2 % and 1.5 % of products: never one group."""
    twins = {z.code: z.twin_of for c in history.scenario.chains.values() for z in c.zones if z.twin_of}
    assert twins == {"fm-z1t": "fm-z1", "vw-z2t": "vw-z2"}
    for name, day in (("day0", 0), ("day2", 2), ("day4", 4)):
        for members in _groups_by_code(history, history.runs[name]).values():
            zones = {history.scenario.zone_of(chain, code, day) for chain, code in members}
            for twin, parent in twins.items():
                assert not {twin, parent} <= zones, (name, members)


def test_a_store_that_caught_prices_mid_change_is_not_kept_as_anchor_over_a_better_member(history):
    """A lagging store's prices nobody else charges make it rank after its clean zone-mates."""
    with psycopg.connect(history.conninfo) as conn:
        anchors = {code for (code,) in conn.execute(
            """SELECT a.code FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
               WHERE (SELECT count(*) FROM stores s WHERE s.group_id = g.group_id AND s.active) > 1""")}
    lagging = {s.code for c in history.scenario.chains.values() for s in c.stores if s.lag_share > 0}
    assert lagging and not anchors & lagging


def test_own_deviations_are_served_as_overrides_with_the_true_price(history):
    """A verified member's own prices (the store prices some products itself) are served, not its anchor's."""
    scenario, day = history.scenario, 5  # the state after the last runs; prices as of day 4, the truth of day 4
    with psycopg.connect(history.conninfo) as conn:
        served = conn.execute(
            """SELECT c.code, s.code, l.sku, e.price, e.source FROM effective_prices e
               JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = s.chain_id
               JOIN listings l ON l.product_id = e.product_id AND l.chain_id = s.chain_id
               WHERE e.source IN ('override', 'stale_override')""").fetchall()
    checked = 0
    for chain, code, sku, price, source in served:
        if scenario.deviations(chain, code, day - 1).get(sku) == "own" and source == "override":
            assert price == scenario.true_prices(chain, code, day - 1)[sku].price
            checked += 1
    assert checked >= 1


def test_the_run_summary_estimates_its_own_error(history):
    estimate = history.runs["day4"]["summary"]["totals"]["verification"]["estimate_14d"]
    assert estimate["checked"] > 1000 and estimate["samples"] >= 3
    assert 0 <= estimate["low"] <= estimate["share"] <= estimate["high"] <= 1


def test_a_member_that_moved_zone_is_caught_by_its_spot_check_the_same_day(history):
    """Every member not scraped reads one catalogue page; the mover's page disagrees, so it is scraped and ejected."""
    run = history.runs["spot_move"]
    assert run["state"] == "success"
    spot = run["summary"]["totals"]["spot_checks"]
    # a member whose page cannot be read (the scenario closes stores) is recorded as failed, not fatal
    assert spot["stores"] > 10 and spot["failed"] <= 2 and spot["pages"] == spot["stores"] - spot["failed"]
    with psycopg.connect(history.conninfo) as conn:
        suspects = {code for (code,) in conn.execute(
            """SELECT s.code FROM spot_checks k JOIN stores s USING (store_id)
               WHERE k.run_id = %s AND k.suspect AND NOT k.evidence ? 'anchor_off'""",  # witnesses of a late anchor aside
            (run["run_id"],))}
        reasons = dict(conn.execute(
            "SELECT s.code, v.reason FROM verifications v JOIN stores s USING (store_id) WHERE v.run_id = %s",
            (run["run_id"],)).fetchall())
    assert suspects == {history.spot_mover}, "only the store that moved disagrees beyond timing"
    assert reasons[history.spot_mover] == "spot"
    assert history.spot_mover in run["scraped"], "scraped in full in the same run"
    mover = history.store_id(history.spot_mover)
    assert ("member_ejected", mover) in {(k, s) for k, s, _ in run["events"]}
    old_zone = history.spot_zones[0]
    for group in _groups_by_code(history, run).values():
        if ("greengrocer", history.spot_mover) in group:
            assert all(history.scenario.zone_of("greengrocer", code, 6) != old_zone
                       for chain, code in group if code != history.spot_mover), group


def test_members_late_with_changes_are_measured_and_no_punctual_store_is_called_late(history):
    """store_lateness: late changes are seen mostly at the stores the scenario makes late (Store.lag_share);
    a punctual store may show one by coincidence (its price equals its anchor's old one), never a habit."""
    lagging = {(c.code, s.code) for c in history.scenario.chains.values() for s in c.stores if s.lag_share > 0}
    with psycopg.connect(history.conninfo) as conn:
        evidence = conn.execute(
            """SELECT c.code, s.code, sum(l.late), sum(l.on_time) FROM store_lateness l
               JOIN stores s USING (store_id) JOIN chains c ON c.chain_id = s.chain_id
               GROUP BY c.code, s.code""").fetchall()
    late_at = {(chain, code): n for chain, code, n, _ in evidence}
    habit = {(chain, code) for chain, code, late, on_time in evidence if usually_late(late, on_time)}
    assert sum(on_time for *_, on_time in evidence) > 0, "punctual members were measured too"
    assert habit <= lagging, f"punctual stores called late: {sorted(habit - lagging)}"
    at_lagging = sum(n for store, n in late_at.items() if store in lagging)
    elsewhere = sum(n for store, n in late_at.items() if store not in lagging)
    assert at_lagging >= 3 and at_lagging >= 3 * elsewhere, (at_lagging, elsewhere)


def test_a_chain_wide_change_has_a_complement_member_scraped_per_group(history):
    """Day 7 starts a new week of specials: the anchors of the chains that are up change en masse."""
    run = history.runs["chain_down"]
    with psycopg.connect(history.conninfo) as conn:
        complement = conn.execute(
            """SELECT c.code, s.code, s.group_id FROM verifications v JOIN stores s USING (store_id)
               JOIN chains c ON c.chain_id = s.chain_id WHERE v.run_id = %s AND v.reason = 'complement'""",
            (run["run_id"],)).fetchall()
    chains = {chain for chain, _, _ in complement}
    assert chains and "greengrocer" not in chains  # the chain that is down changed nothing
    assert all(code in run["scraped"] for _, code, _ in complement), "scraped in the same run"
    assert len({group for *_, group in complement}) == len(complement), "one member per group"
