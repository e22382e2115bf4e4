"""One rule set: the DAG's database path and the offline CLI, fed the same scrapes, end each day in the same state.

Each day the same scrapes go through the real upsert and the DAG's group
maintenance on PostgreSQL, and as PRICES.csv through `python -m pricegroups
group --state-in/--state-out/--effective-out`. Afterwards the groups, anchors,
store times, needs_verification flags, every stored price row (with when it
was first observed) and every effective price with its source are equal.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pricegroups.cli import main
from pricegroups.grouping import repository as repo
from pricegroups.grouping.offline import read_state
from pricegroups.grouping.service import find_stale_anchors, health_check_groups, merge_groups
from pricegroups.settings import Settings
from tests.integration.grouping.world import World, day, groups_of

SETTINGS = Settings()
HEADER = ["chain", "store", "product", "price", "was_price", "on_special", "scraped_at"]


def maintain(conn, n: int) -> None:
    run = f"run-{n}"
    find_stale_anchors(conn, day(n), SETTINGS, run_id=run)
    groups = [r[0] for r in conn.execute("SELECT group_id FROM store_groups ORDER BY 1")]
    health_check_groups(conn, groups, day(n), run, SETTINGS)
    merge_groups(conn, day(n), run, SETTINGS)
    conn.commit()


class Twin:
    """The same world seen by the database and by the offline CLI."""

    def __init__(self, world: World, tmp: Path) -> None:
        self.world, self.tmp, self.state = world, tmp, None

    def scrape(self, stores: list[int], n: int) -> None:
        self.world.scrape(stores, day(n))
        path = self.tmp / f"prices{n}.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(HEADER)
            for s in stores:
                for p in self.world.carried(s):
                    writer.writerow(["acme", s, p, self.world.true_price(s, p), "", "false", day(n).isoformat()])

    def maintain(self, n: int) -> None:
        maintain(self.world.conn, n)
        state = self.tmp / f"state{n}"
        args = ["group", "--prices", str(self.tmp / f"prices{n}.csv"), "--state-out", str(state),
                "--effective-out", str(self.tmp / f"effective{n}.csv")]
        if self.state is not None:
            args += ["--state-in", str(self.state)]
        assert main(args) == 0
        self.state = state
        self.assert_same(n)

    def assert_same(self, n: int) -> None:
        conn, state = self.world.conn, self.state
        db_groups = {str(a): sorted(str(s) for s in m) for a, m in groups_of(conn).items()}
        offline_groups: dict[str, list[str]] = {}
        anchor_of_group = {g["group"]: g["anchor"] for g in read(state / "groups.csv")}
        for s in read(state / "stores.csv"):
            offline_groups.setdefault(anchor_of_group[s["group"]], []).append(s["store"])
        assert {a: sorted(m) for a, m in offline_groups.items()} == db_groups, f"day {n}: groups"

        db_stores = {str(s): (iso(f), iso(last), iso(v), str(nv).lower()) for s, f, last, v, nv in conn.execute(
            "SELECT store_id, first_scraped_at, last_scraped_at, last_verified_at, needs_verification FROM stores")}
        offline_stores = {s["store"]: (s["first_scraped_at"], s["last_scraped_at"], s["verified_at"],
                                       s["needs_verification"]) for s in read(state / "stores.csv")}
        assert offline_stores == db_stores, f"day {n}: store times and flags"

        db_rows = {(str(s), str(p)): (f"{price:.2f}", iso(at)) for s, p, price, at in conn.execute(
            "SELECT store_id, product_id, price, scraped_at FROM prices")}
        offline_rows = {(r["store"], r["product"]): (r["price"], r["first_observed"]) for r in read(state / "rows.csv")}
        assert offline_rows == db_rows, f"day {n}: price rows"

        db_served = {(str(s), str(p)): (f"{price:.2f}", source) for s, p, price, source in conn.execute(
            "SELECT store_id, product_id, price, source FROM effective_prices")}
        offline_served = {(r["store"], r["product"]): (r["price"], r["source"])
                          for r in read(self.tmp / f"effective{n}.csv")}
        assert offline_served == db_served, f"day {n}: effective prices"

        db_rates = repo.change_rates(conn, [self.world.chain_id], SETTINGS)
        assert read_state(state).change_rates() == pytest.approx(
            {"acme": db_rates[self.world.chain_id]} if db_rates else {}), f"day {n}: change rates"


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def iso(value: datetime | None) -> str:
    return value.astimezone(day(0).tzinfo).isoformat() if value is not None else ""


def test_the_database_and_the_offline_cli_keep_the_same_state_day_after_day(conn, tmp_path):
    w = World.build(conn, ["A", "A", "A", "B", "B", "B", "A"], products=300)
    w.derive_zone("B", "A", 0.2)
    member = w.stores[1]
    w.overrides[member] = {w.products[0]: w.zones["A"][w.products[0]] + Decimal("0.01"),
                           w.products[1]: w.zones["A"][w.products[1]] + Decimal("0.02")}
    twin = Twin(w, tmp_path)

    twin.scrape(w.stores, 0)  # bootstrap: every store
    twin.maintain(0)
    anchors = sorted(groups_of(conn))
    assert len(anchors) == 2

    a_anchor = next(a for a in anchors if w.zone_of[a] == "A")
    w.zones["A"][w.products[1]] += Decimal("0.10")  # list A changes the product the member deviates on
    w.zones["A"][w.products[5]] += Decimal("0.10")
    twin.scrape(anchors, 1)  # a normal day: anchors only
    twin.maintain(1)
    served = {(r["store"], r["product"]): r["source"] for r in read(tmp_path / "effective1.csv")}
    assert served[(str(member), str(w.products[1]))] == "stale_override"
    assert served[(str(member), str(w.products[0]))] == "override"

    mover = next(s for s in w.stores if s not in anchors and w.zone_of[s] == "A" and s != member)
    w.zone_of[mover] = "B"
    twin.scrape(anchors + [member, mover], 2)  # two members verified: one still deviates, one moved
    twin.maintain(2)

    # list B converges on list A but for three new prices: members verified before those prices were
    # first observed do not back them (the groups' evidence), so they are B's anchor's own and the
    # groups (both with members) merge
    differing = [p for p in w.products if w.zones["B"][p] != w.zones["A"][p]]
    w.zones["B"] = dict(w.zones["A"])
    for p in differing[:3]:
        w.zones["B"][p] += Decimal("0.07")
    twin.scrape(sorted(groups_of(conn)), 3)
    twin.maintain(3)
    flagged = [s for s in read(twin.state / "stores.csv") if s["needs_verification"] == "true"]
    assert flagged and len(groups_of(conn)) == 1 and str(a_anchor) in {s["store"] for s in read(twin.state / "stores.csv")}
