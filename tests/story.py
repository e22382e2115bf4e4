"""The compact scenario's story, played once per session through the pipeline harness (a pytest plugin).

Chapters, each a database state (tests/states.py) built from the one before:
a bootstrap day; days 1-3 on which one freshmart anchor's scrape keeps failing
until its group hands the anchor role over (day 3 re-scrapes the new anchor);
three runs restricted to the store the scenario moves on day 3 (the second and
third change nothing further); a full day 4; a backfill of day 2 for that
store; day 6, on which a greengrocer member moves zone unannounced (its spot
check must catch it); day 7 with greengrocer's site down. The failed anchor
stays down until day 6. After every run the invariant checker runs, and what
it found is kept with the state's facts for a test to assert on.

The DAG tier starts its `dag.test()` runs from clones of these states; the
rule checks of tests/integration/test_daily_story.py read them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any, Callable, Iterator

import psycopg
import pytest

from pricegroups.demo.chains import register_demo_chains
from pricegroups.demo.generate import compact_scenario
from pricegroups.demo.model import Event
from pricegroups.demo.report import adjusted_rand_index
from pricegroups.demo.scenario import Scenario
from pricegroups.demo.server import DemoSite
from pricegroups.invariants import check_invariants, price_times, regressions
from tests.pipeline_harness import run_day
from tests.states import Facts, States, Step, shared_directory

STORES = 34  # in the compact scenario


@dataclass(frozen=True)
class Chapter:
    """One run of the story: its simulated day, and from the facts so far its params and the site's events."""

    name: str
    day: int
    params: Callable[[Facts], dict[str, Any]] = lambda facts: {}
    events: Callable[[Facts], list[Event]] = lambda facts: []
    learn: Callable[[psycopg.Connection, Scenario, Facts], Facts] = lambda conn, scenario, facts: {}  # before the run


def _failing(facts: Facts) -> list[Event]:
    """The failing anchor's scrape keeps failing (every request answered 503)."""
    return [Event("server_error", "freshmart", store=facts["failing"], count=None)]


def failing_anchor(conn: psycopg.Connection, scenario: Scenario) -> str:
    """A freshmart anchor with members that is not the store the scenario moves on day 3."""
    rows = conn.execute(
        """SELECT a.code FROM store_groups g JOIN stores a ON a.store_id = g.anchor_store_id
           JOIN chains c ON c.chain_id = g.chain_id
           WHERE c.code = 'freshmart' AND (SELECT count(*) FROM stores s WHERE s.group_id = g.group_id) >= 3
           ORDER BY a.code"""
    ).fetchall()
    movers = scenario.events_on(3, "freshmart")
    mover = movers[0].store if movers else None
    return next(code for (code,) in rows if code != mover)


def member_to_move(conn: psycopg.Connection, scenario: Scenario, chain: str, day: int) -> tuple[str, list[str]]:
    """A member of a group of three or more, and [its zone, another regular zone with stores] to move it to."""
    zones = {z.code: z for z in scenario.chain(chain).zones}
    regular = sorted(code for code, z in zones.items() if not z.independent and z.twin_of is None
                     and any(scenario.zone_of(chain, s.code, day) == code for s in scenario.chain(chain).stores))
    members = [code for (code,) in conn.execute(
        """SELECT s.code FROM stores s JOIN store_groups g ON g.group_id = s.group_id
           JOIN chains c ON c.chain_id = s.chain_id
           WHERE c.code = %s AND s.store_id <> g.anchor_store_id
             AND (SELECT count(*) FROM stores o WHERE o.group_id = s.group_id) >= 3
           ORDER BY s.code""", (chain,))]
    for code in members:
        zone = scenario.zone_of(chain, code, day)
        if zone in regular:
            return code, [zone, next(z for z in regular if z != zone)]
    raise AssertionError(f"no {chain} member of a regular zone to move")


def _learn_failing(conn: psycopg.Connection, scenario: Scenario, facts: Facts) -> Facts:
    mover = next(e.store for e in scenario.events_on(3, "freshmart") if e.kind == "store_moves")
    return {"failing": failing_anchor(conn, scenario), "mover": mover}


def _learn_spot_mover(conn: psycopg.Connection, scenario: Scenario, facts: Facts) -> Facts:
    code, zones = member_to_move(conn, scenario, "greengrocer", 6)
    return {"spot_mover": code, "spot_zones": zones}


def _mover(facts: Facts) -> dict[str, Any]:
    return {"stores": [facts["mover"]]}


CHAPTERS: list[Chapter] = [
    Chapter("day0", 0),
    Chapter("day1", 1, events=_failing, learn=_learn_failing),
    Chapter("day2", 2, events=_failing),
    Chapter("day3", 3, events=_failing),
    Chapter("moved", 4, _mover, _failing),
    Chapter("moved_again", 4, _mover, _failing),
    Chapter("moved_thrice", 4, _mover, _failing),
    Chapter("day4", 4, events=_failing),
    Chapter("backfill", 2, _mover, _failing),  # a manual run for a date older than day 4's: a backfill
    Chapter("spot_move", 6, learn=_learn_spot_mover, events=lambda f: [
        Event("store_moves", "greengrocer", day=6, store=f["spot_mover"], zone=f["spot_zones"][1])]),
    Chapter("chain_down", 7, events=lambda f: [Event("server_error", "greengrocer", count=None)]),  # the whole site
]
NAMES = [c.name for c in CHAPTERS]


def logical_date(scenario: Scenario, day: int) -> datetime:
    return datetime.combine(scenario.date_of(day), time(6), tzinfo=timezone.utc)


def invariant_failures(conn: psycopg.Connection, before: dict) -> dict[str, Any]:
    """DESIGN.md §6 by the one invariant checker (`python -m pricegroups check`), and no price made older."""
    failed: dict[str, Any] = {r.name: r.violations for r in check_invariants(conn) if not r.ok}
    older = regressions(before, price_times(conn))
    if older:
        failed["older"] = older[:5]
    conn.rollback()
    return failed


class Story:
    """The chapters as states of one session; `clone(name)` gives a test its own copy."""

    def __init__(self, states: States, site: DemoSite, scenario: Scenario) -> None:
        self.states, self.site, self.scenario = states, site, scenario
        for index, chapter in enumerate(CHAPTERS):
            parent = CHAPTERS[index - 1].name if index else None
            states.define(Step(f"story_{chapter.name}", f"story_{parent}" if parent else None,
                               self._builder(index, chapter)))

    def _builder(self, index: int, chapter: Chapter) -> Callable[[str, Facts], Facts]:
        def build(url: str, facts: Facts) -> Facts:
            with psycopg.connect(url) as conn:
                register_demo_chains(conn, self.site.base_url)  # this worker's site: another may have built the parent
                conn.commit()
                facts.update(chapter.learn(conn, self.scenario, facts))
                before = price_times(conn)
            self.site.clear_events()
            self.site.add_event(*chapter.events(facts))
            self.site.set_day(chapter.day)
            try:
                with story_environment(self.site):
                    run = run_day(url, f"manual__story{index:02d}_{chapter.name}",
                                  logical_date(self.scenario, chapter.day), chapter.params(facts))
            finally:
                self.site.clear_events()
            with psycopg.connect(url) as conn:
                broken = invariant_failures(conn, before)
            return {**facts, "run_id": run.run_id, "day": chapter.day, "state": run.state,
                    "failure": run.failure, "rescraped": bool(run.stale), "invariants": broken}

        return build

    @contextmanager
    def clone(self, name: str) -> Iterator[tuple[str, Facts]]:
        with self.states.clone(f"story_{name}") as copy:
            yield copy


def ari(conn: psycopg.Connection, scenario: Scenario, day: int) -> float:
    """Adjusted Rand index of the open stores' groups against their true zones on `day`."""
    truth, found = {}, {}
    for chain, code, group in conn.execute(
        "SELECT c.code, s.code, s.group_id FROM stores s JOIN chains c USING (chain_id) WHERE s.active"
    ):
        if scenario.is_open(chain, code, day):
            truth[(chain, code)] = f"{chain}:{scenario.zone_of(chain, code, day)}"
            found[(chain, code)] = group
    return adjusted_rand_index(truth, found)


def snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    """Everything a run may change, to compare whole."""
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


@pytest.fixture(scope="session")
def story_scenario() -> Scenario:
    return compact_scenario()


@pytest.fixture(scope="session")
def story_site(story_scenario: Scenario) -> Iterator[DemoSite]:
    """The compact scenario's site on loopback, one per worker (a free port each)."""
    site = DemoSite(story_scenario, day=0)
    site.start(port=0)
    yield site
    site.stop()


# Every HTTP retry is still made, without its backoff: with the default 0.5 s doubling, each request to a
# store that stays down waits 15.5 s, and a chain down waits that per store (minutes per run).
FAST_RETRIES = {"PRICEGROUPS_REQUESTS_PER_SECOND": "0", "PRICEGROUPS_RETRY_BACKOFF_S": "0.001",
                "PRICEGROUPS_RETRY_WAIT_CAP_S": "0.001"}


@contextmanager
def story_environment(site: DemoSite) -> Iterator[None]:
    """While a chapter runs: no rate limit (loopback), retries without waits, and one snapshot root per
    site, so a later chapter replays what an earlier one fetched for the same date (pages name their
    site's port: another worker's snapshots are not this site's)."""
    port = site.base_url.rsplit(":", 1)[1]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAST_RETRIES.items():
            patch.setenv(name, value)
        patch.setenv("PRICEGROUPS_SNAPSHOT_ROOT", str(shared_directory() / f"story-snapshots-{port}"))
        yield


@pytest.fixture(scope="session")
def story(states_cache: States, story_site: DemoSite, story_scenario: Scenario) -> Story:
    return Story(states_cache, story_site, story_scenario)
