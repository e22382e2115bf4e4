"""The offline `group` command on CSV files: same engine, clear errors, no half-written output."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from pricegroups.cli import main

HEADER = ["chain", "store", "product", "price", "was_price", "on_special", "scraped_at"]
WHEN = "2026-11-01T06:00:00+00:00"


def write_prices(path: Path, zones_of: dict[str, int], products: int = 80, seed: int = 3, extra: list | None = None) -> None:
    rnd = random.Random(seed)
    lists = [{p: rnd.randint(100, 900) for p in range(products)} for _ in range(max(zones_of.values()) + 1)]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for store, zone in zones_of.items():
            for p, cents in lists[zone].items():
                writer.writerow(["acme", store, f"p{p}", f"{cents / 100:.2f}", "", "false", WHEN])
        for row in extra or []:
            writer.writerow(row)


def read_groups(path: Path) -> dict[str, str]:
    with open(path, newline="") as handle:
        return {r["store"]: r["anchor"] for r in csv.DictReader(handle)}


def test_groups_stores_by_zone_and_writes_events(tmp_path):
    zones = {"s1": 0, "s2": 1, "s3": 0, "s4": 1, "s5": 0}
    write_prices(tmp_path / "prices.csv", zones)
    code = main(["group", "--prices", str(tmp_path / "prices.csv"), "--out", str(tmp_path / "groups.csv"),
                 "--events", str(tmp_path / "events.csv")])
    assert code == 0
    assert read_groups(tmp_path / "groups.csv") == {"s1": "s1", "s3": "s1", "s5": "s1", "s2": "s2", "s4": "s2"}
    with open(tmp_path / "events.csv", newline="") as handle:
        events = list(csv.DictReader(handle))
    assert [e["kind"] for e in events] == ["merged"] * 3
    assert all(e["outcome"] == "match" and float(e["rate"]) >= 0.98 for e in events)


def test_previous_groups_are_health_checked_and_a_moved_store_ejected(tmp_path):
    write_prices(tmp_path / "prices.csv", {"s1": 0, "s2": 0, "s3": 1})
    with open(tmp_path / "previous.csv", "w", newline="") as handle:
        handle.write("chain,store,anchor\nacme,s1,s1\nacme,s2,s1\nacme,s3,s1\nacme,s9,s9\n")
    assert main(["group", "--prices", str(tmp_path / "prices.csv"), "--out", str(tmp_path / "groups.csv"),
                 "--groups", str(tmp_path / "previous.csv")]) == 0
    # s3 now prices like another zone: ejected; s9 has no prices but keeps its row
    assert read_groups(tmp_path / "groups.csv") == {"s1": "s1", "s2": "s1", "s3": "s3", "s9": "s9"}


def test_rows_outside_the_window_are_not_current(tmp_path):
    write_prices(tmp_path / "prices.csv", {"s1": 0, "s2": 0})
    args = ["group", "--prices", str(tmp_path / "prices.csv"), "--out", str(tmp_path / "groups.csv")]
    assert main([*args, "--as-of", "2026-11-05T06:00:00+00:00"]) == 0
    assert read_groups(tmp_path / "groups.csv") == {"s1": "s1", "s2": "s2"}
    assert main([*args, "--as-of", "2026-11-05T06:00:00+00:00", "--window-hours", "120"]) == 0
    assert read_groups(tmp_path / "groups.csv") == {"s1": "s1", "s2": "s1"}


@pytest.mark.parametrize(
    "row,message",
    [
        (["acme", "s1", "px", "abc", "", "false", WHEN], "prices.csv:162: price 'abc' is not a decimal number"),
        (["acme", "s1", "px", "-1.00", "", "false", WHEN], "prices.csv:162: price '-1.00' must be a positive amount"),
        (["acme", "s1", "px", "1.001", "", "false", WHEN], "fractions of a cent"),
        (["acme", "s1", "px", "1.00", "", "maybe", WHEN], "on_special must be true or false"),
        (["acme", "s1", "px", "1.00", "", "false", "yesterday"], "is not an ISO 8601 date-time"),
        (["acme", "s1", "px", "1.00", "", "false", "2026-11-01T06:00:00"], "has no UTC offset"),
        (["acme", "s1", "p1", "1.00", "", "false", WHEN], "prices.csv:162: duplicate row"),
    ],
)
def test_bad_input_names_the_line_exits_2_and_writes_nothing(tmp_path, capsys, row, message):
    write_prices(tmp_path / "prices.csv", {"s1": 0, "s2": 0}, extra=[row])
    out = tmp_path / "groups.csv"
    assert main(["group", "--prices", str(tmp_path / "prices.csv"), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "prices.csv"]


def test_missing_columns_are_named(tmp_path, capsys):
    (tmp_path / "prices.csv").write_text("chain,store,product,price\nacme,s1,p1,1.00\n")
    assert main(["group", "--prices", str(tmp_path / "prices.csv"), "--out", str(tmp_path / "g.csv")]) == 2
    assert "missing column(s) was_price, on_special, scraped_at" in capsys.readouterr().err


def test_columns_may_come_in_any_order(tmp_path):
    write_prices(tmp_path / "a.csv", {"s1": 0, "s2": 0})
    with open(tmp_path / "a.csv", newline="") as src, open(tmp_path / "b.csv", "w", newline="") as dst:
        rows = list(csv.reader(src))
        order = [6, 5, 4, 3, 2, 1, 0]
        csv.writer(dst).writerows([[r[i] for i in order] for r in rows])
    assert main(["group", "--prices", str(tmp_path / "b.csv"), "--out", str(tmp_path / "g.csv")]) == 0
    assert read_groups(tmp_path / "g.csv") == {"s1": "s1", "s2": "s1"}


# -- state in, state out, effective prices out: a normal day replayed offline -----------------------

DAY1 = "2026-11-01T06:00:00+00:00"
DAY2 = "2026-11-02T06:00:00+00:00"
PRODUCTS = 400  # a member may deviate on 1% of them: 4
ZONES = {"s1": 0, "s2": 1, "s3": 0, "s4": 1, "s5": 0, "s6": 1}
OWN = {"s3": {"p000": 1, "p001": 2}}  # s3's own deviations (cents added to its list's price)


def price_lists(seed: int = 3) -> list[dict[str, int]]:
    rnd = random.Random(seed)
    first = {f"p{p:03d}": rnd.randint(100, 900) for p in range(PRODUCTS)}
    second = dict(first)
    for p in rnd.sample(sorted(first), 40):
        second[p] += 25
    return [first, second]


def write_scrapes(path: Path, prices: dict[str, dict[str, int]], when: str) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for store, rows in prices.items():
            for product, cents in rows.items():
                writer.writerow(["acme", store, product, f"{cents / 100:.2f}", "", "false", when])


def day1_prices() -> dict[str, dict[str, int]]:
    lists = price_lists()
    return {s: {p: c + OWN.get(s, {}).get(p, 0) for p, c in lists[z].items()} for s, z in ZONES.items()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def edit_csv(path: Path, change) -> None:
    rows = read_csv(path)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(change(r) for r in rows)


def run(*args: object) -> int:
    return main(["group", *(str(a) for a in args)])


@pytest.fixture
def day1(tmp_path) -> Path:
    """Day 1: every store scraped (a bootstrap); its state in tmp_path/state1."""
    write_scrapes(tmp_path / "day1.csv", day1_prices(), DAY1)
    assert run("--prices", tmp_path / "day1.csv", "--out", tmp_path / "groups1.csv",
               "--state-out", tmp_path / "state1") == 0
    return tmp_path / "state1"


def test_day1_state_has_the_groups_times_and_deduplicated_rows(tmp_path, day1):
    assert read_groups(tmp_path / "groups1.csv") == {"s1": "s1", "s3": "s1", "s5": "s1",
                                                     "s2": "s2", "s4": "s2", "s6": "s2"}
    assert read_csv(day1 / "groups.csv") == [
        {"chain": "acme", "group": "s1", "anchor": "s1", "created_at": DAY1},
        {"chain": "acme", "group": "s2", "anchor": "s2", "created_at": DAY1},
    ]
    stores = {r["store"]: r for r in read_csv(day1 / "stores.csv")}
    assert stores["s3"] == {"chain": "acme", "store": "s3", "group": "s1", "first_scraped_at": DAY1,
                            "last_scraped_at": DAY1, "verified_at": DAY1, "needs_verification": "false",
                            "late_changes": "0", "timely_changes": "0"}
    assert stores["s1"]["verified_at"] == "" and stores["s1"]["last_scraped_at"] == DAY1
    rows = read_csv(day1 / "rows.csv")
    by_store: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_store.setdefault(r["store"], {})[r["product"]] = r
    # anchors keep their catalogue; members only what differs from their anchor (s3's own deviations)
    assert sorted(by_store) == ["s1", "s2", "s3"]
    assert len(by_store["s1"]) == len(by_store["s2"]) == PRODUCTS
    lists = price_lists()
    assert {p: r["price"] for p, r in by_store["s3"].items()} == {
        p: f"{(lists[0][p] + d) / 100:.2f}" for p, d in OWN["s3"].items()}
    assert all(r["first_observed"] == DAY1 and r["was_price"] == "" and r["on_special"] == "false" for r in rows)


def test_a_normal_day_is_replayed_from_the_state_with_only_the_anchors_prices(tmp_path, day1):
    lists = price_lists()
    anchor0 = dict(lists[0], p001=999, p007=888)  # the anchor of list 0 changed two prices on day 2
    write_scrapes(tmp_path / "day2.csv", {"s1": anchor0, "s2": lists[1]}, DAY2)
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--state-out", tmp_path / "state2",
               "--effective-out", tmp_path / "effective.csv", "--events", tmp_path / "events.csv") == 0
    assert read_csv(tmp_path / "events.csv") == []  # nothing to check (no member scraped), nothing merges

    served: dict[str, dict[str, tuple[int, str]]] = {}
    for r in read_csv(tmp_path / "effective.csv"):
        assert r["chain"] == "acme" and r["on_special"] == "false"
        served.setdefault(r["store"], {})[r["product"]] = (round(float(r["price"]) * 100), r["source"])
    assert sorted(served) == sorted(ZONES)  # every store, scraped today or not
    assert served["s1"] == {p: (c, "observed") for p, c in anchor0.items()}
    assert served["s2"] == {p: (c, "observed") for p, c in lists[1].items()}
    assert served["s5"] == {p: (c, "inferred") for p, c in anchor0.items()}  # from the anchor's day-2 prices
    assert served["s4"] == served["s6"] == {p: (c, "inferred") for p, c in lists[1].items()}
    s3 = served["s3"]
    assert s3["p000"] == (lists[0]["p000"] + 1, "override")  # its own deviation, still served
    assert s3["p001"] == (999, "stale_override")  # the anchor's price changed since s3 was verified
    assert s3["p007"] == (888, "inferred")
    assert {p: v for p, v in s3.items() if p not in ("p000", "p001")} == {
        p: (c, "inferred") for p, c in anchor0.items() if p not in ("p000", "p001")}

    before = {r["store"]: r for r in read_csv(day1 / "stores.csv")}
    after = {r["store"]: r for r in read_csv(tmp_path / "state2" / "stores.csv")}
    for store in ZONES:  # scraped stores advance, the others keep their times
        expected = dict(before[store], last_scraped_at=DAY2) if store in ("s1", "s2") else before[store]
        assert after[store] == expected
    rows = {(r["store"], r["product"]): r for r in read_csv(tmp_path / "state2" / "rows.csv")}
    assert rows[("s1", "p001")]["price"] == "9.99" and rows[("s1", "p001")]["first_observed"] == DAY2
    assert rows[("s1", "p002")]["first_observed"] == DAY1  # unchanged: first observed on day 1
    assert rows[("s2", "p001")]["first_observed"] == DAY1
    assert {p for s, p in rows if s == "s3"} == set(OWN["s3"])  # not scraped: its overrides stay


def test_a_state_round_trips_through_a_round_without_changes(tmp_path, day1):
    lists = price_lists()
    write_scrapes(tmp_path / "day2.csv", {"s1": dict(lists[0], p001=999), "s2": lists[1]}, DAY2)
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--state-out", tmp_path / "state2") == 0
    # hand-edited state: a group label that is not its anchor's code, a flag set
    state2 = tmp_path / "state2"
    edit_csv(state2 / "groups.csv", lambda r: dict(r, group="zone-b") if r["group"] == "s2" else r)
    edit_csv(state2 / "stores.csv", lambda r: dict(r, group="zone-b" if r["group"] == "s2" else r["group"],
                                                   needs_verification=str(r["store"] == "s6").lower()))
    assert "zone-b" in (state2 / "groups.csv").read_text() and ",true" in (state2 / "stores.csv").read_text()
    # the same day again: no store was scraped after its last scrape, nothing changes
    assert run("--prices", tmp_path / "day2.csv", "--state-in", state2, "--state-out", tmp_path / "state3") == 0
    for name in ("groups.csv", "stores.csv", "rows.csv"):
        assert (tmp_path / "state3" / name).read_text() == (state2 / name).read_text(), name
    # an older scrape (day 1 again, a backfill) never makes the state older
    assert run("--prices", tmp_path / "day1.csv", "--state-in", state2, "--state-out", tmp_path / "state4") == 0
    for name in ("groups.csv", "stores.csv", "rows.csv"):
        assert (tmp_path / "state4" / name).read_text() == (state2 / name).read_text(), name


def test_members_scraped_on_a_normal_day_are_verified_or_ejected_and_regrouped(tmp_path, day1):
    lists = price_lists()
    anchor0 = dict(lists[0], p001=999)
    # s5 (list 0) is scraped to verify it; s4 now charges list 0's prices: it moved zone
    write_scrapes(tmp_path / "day2.csv", {"s1": anchor0, "s2": lists[1], "s5": anchor0, "s4": anchor0}, DAY2)
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--state-out", tmp_path / "state2",
               "--out", tmp_path / "groups2.csv", "--events", tmp_path / "events.csv") == 0
    events = [(e["kind"], e["store"], e["other_store"], e["outcome"]) for e in read_csv(tmp_path / "events.csv")]
    assert events == [("verified", "s5", "s1", "match"), ("member_ejected", "s4", "s2", "mismatch"),
                      ("merged", "s4", "s1", "match")]
    assert read_groups(tmp_path / "groups2.csv") == {"s1": "s1", "s3": "s1", "s4": "s1", "s5": "s1",
                                                     "s2": "s2", "s6": "s2"}
    stores = {r["store"]: r for r in read_csv(tmp_path / "state2" / "stores.csv")}
    assert stores["s5"]["verified_at"] == stores["s4"]["verified_at"] == DAY2
    assert stores["s4"]["group"] == "s1" and stores["s4"]["last_scraped_at"] == DAY2
    rows = {(r["store"], r["product"]) for r in read_csv(tmp_path / "state2" / "rows.csv")}
    assert not any(s in ("s4", "s5") for s, _ in rows)  # verified: every row equal to the anchor's, deduplicated
    assert [g["group"] for g in read_csv(tmp_path / "state2" / "groups.csv")] == ["s1", "s2"]


def test_merging_two_groups_with_members_flags_their_members_for_verification(tmp_path, day1):
    lists = price_lists()
    write_scrapes(tmp_path / "day2.csv", {"s1": lists[0], "s2": lists[0]}, DAY2)  # the two lists converged
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--state-out", tmp_path / "state2",
               "--effective-out", tmp_path / "effective.csv") == 0
    stores = {r["store"]: r for r in read_csv(tmp_path / "state2" / "stores.csv")}
    assert {s for s, r in stores.items() if r["group"] == "s1"} == set(ZONES)
    # s2 was compared with s1 directly (verified now); the members of both groups were not
    assert {s for s, r in stores.items() if r["needs_verification"] == "true"} == {"s3", "s4", "s5", "s6"}
    assert stores["s2"]["verified_at"] == DAY2 and stores["s4"]["verified_at"] == DAY1
    served = {(r["store"], r["product"]): (r["price"], r["source"]) for r in read_csv(tmp_path / "effective.csv")}
    assert all(served[("s6", p)] == (f"{c / 100:.2f}", "inferred") for p, c in lists[0].items())


def test_a_store_unknown_to_the_state_starts_ungrouped(tmp_path, day1):
    lists = price_lists()
    write_scrapes(tmp_path / "day2.csv", {"s1": lists[0], "s2": lists[1], "s7": lists[1], "s8": {"p000": 100}},
                  DAY2)
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--state-out", tmp_path / "state2",
               "--effective-out", tmp_path / "effective.csv") == 0
    groups = {g["group"]: g for g in read_csv(tmp_path / "state2" / "groups.csv")}
    assert groups["s8"] == {"chain": "acme", "group": "s8", "anchor": "s8", "created_at": DAY2}  # too small to merge
    stores = {r["store"]: r for r in read_csv(tmp_path / "state2" / "stores.csv")}
    assert stores["s7"]["group"] == "s2" and stores["s7"]["first_scraped_at"] == DAY2  # it matched list 1
    sources = {(r["store"], r["source"]) for r in read_csv(tmp_path / "effective.csv")}
    assert ("s7", "inferred") in sources and ("s8", "observed") in sources


def state_with(day1: Path, target: Path, name: str, change) -> None:
    target.mkdir()
    for file in ("groups.csv", "stores.csv", "rows.csv"):
        (target / file).write_text((day1 / file).read_text())
    if change is None:
        (target / name).unlink()
    else:
        change(target / name)


def edit_row(index: int, **values):
    return lambda path: edit_csv(path, lambda r, n=iter(range(10**6)): dict(r, **values) if next(n) == index else r)


def append_copy(index: int):
    def change(path: Path) -> None:
        rows = read_csv(path)
        with open(path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=list(rows[0])).writerow(rows[index])
    return change


def drop_column(column: str):
    def change(path: Path) -> None:
        rows = read_csv(path)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[c for c in rows[0] if c != column], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return change


@pytest.mark.parametrize(
    "name,change,message",
    [
        ("groups.csv", edit_row(0, created_at="yesterday"), "groups.csv:2: created_at 'yesterday' is not an ISO 8601"),
        ("groups.csv", append_copy(0), "groups.csv:4: group 's1' of chain 'acme' listed twice"),
        ("groups.csv", edit_row(0, anchor="s2"), "groups.csv:2: anchor 's2' is not a store of group 's1' in stores.csv"),
        ("groups.csv", edit_row(1, group=""), "groups.csv:3: chain, group and anchor must not be empty"),
        ("stores.csv", edit_row(2, group="nowhere"), "stores.csv:4: group 'nowhere' of chain 'acme' is not in groups.csv"),
        ("stores.csv", edit_row(0, needs_verification="maybe"), "stores.csv:2: needs_verification must be true or false"),
        ("stores.csv", edit_row(3, verified_at="2026-11-01T06:00:00"), "stores.csv:5: verified_at '2026-11-01T06:00:00' has no UTC offset"),
        ("stores.csv", append_copy(5), "stores.csv:8: store 's6' of chain 'acme' listed twice"),
        ("rows.csv", edit_row(0, store="s9"), "rows.csv:2: store 's9' of chain 'acme' is not in stores.csv"),
        ("rows.csv", edit_row(1, price="1.001"), "rows.csv:3: price '1.001' has fractions of a cent"),
        ("rows.csv", edit_row(2, on_special="yes"), "rows.csv:4: on_special must be true or false, got 'yes'"),
        ("rows.csv", append_copy(0), f"rows.csv:{2 * PRODUCTS + 2 + 2}: duplicate row for store 's1' product 'p000'"),
        ("rows.csv", drop_column("first_observed"), "rows.csv:1: missing column(s) first_observed"),
        ("rows.csv", None, "rows.csv: cannot read"),
    ],
)
def test_bad_state_files_name_the_file_and_line_exit_2_and_write_nothing(tmp_path, day1, capsys, name, change,
                                                                        message):
    state_with(day1, tmp_path / "bad", name, change)
    write_scrapes(tmp_path / "day2.csv", {"s1": price_lists()[0]}, DAY2)
    outputs = [tmp_path / "groups2.csv", tmp_path / "effective.csv", tmp_path / "state2"]
    code = run("--prices", tmp_path / "day2.csv", "--state-in", tmp_path / "bad", "--out", outputs[0],
               "--effective-out", outputs[1], "--state-out", outputs[2])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any(p.exists() for p in outputs)


def test_state_in_and_groups_are_mutually_exclusive_and_some_output_is_needed(tmp_path, day1, capsys):
    write_scrapes(tmp_path / "day2.csv", {"s1": price_lists()[0]}, DAY2)
    with pytest.raises(SystemExit) as exc:
        run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--groups", tmp_path / "groups1.csv",
            "--out", tmp_path / "g.csv")
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1) == 2
    assert "nothing to write" in capsys.readouterr().err


def test_members_verified_before_an_anchor_price_change_do_not_back_the_new_price(tmp_path, day1):
    """The groups' evidence uses when each price was first observed (as the database path does).

    On day 2 list 1's anchor charges list 0's prices except three products at
    new prices. Its members were verified on day 1, before those prices were
    first observed: they do not back them, so the three are the anchor's own
    deviations (at most 1% of 400) and the groups merge. Were the members taken
    to back every price of their anchor, the three would be shared
    disagreements of two lists and nothing would merge.
    """
    lists = price_lists()
    moved = dict(lists[0])
    changed = sorted(p for p in lists[0] if lists[0][p] != lists[1][p])[:3]
    for p in changed:
        moved[p] = lists[0][p] + 7
    write_scrapes(tmp_path / "day2.csv", {"s1": lists[0], "s2": moved}, DAY2)
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--out", tmp_path / "groups2.csv",
               "--events", tmp_path / "events.csv") == 0
    events = read_csv(tmp_path / "events.csv")
    assert [(e["kind"], e["store"], e["other_store"]) for e in events] == [("merged", "s2", "s1")]
    evidence = json.loads(events[0]["evidence"])
    own = {store[1]: n for store, n in zip(evidence["stores"], evidence["own"])}
    assert evidence["shared"] == 0 and own == {"s2": 3, "s1": 0}
    assert set(read_groups(tmp_path / "groups2.csv").values()) == {"s1"}


def test_a_member_late_with_changes_is_learned_and_served_the_replaced_prices(tmp_path, day1):
    """Day 2: the anchor of list 0 changes three regular prices; s5, scraped too, still shows the old ones.
    Day 3 (state in, only the anchors): a fresh change is served to s5 at its old price, to s3 at the new."""
    lists = price_lists()
    changed = {"p010": 777, "p011": 778, "p012": 779}
    write_scrapes(tmp_path / "day2.csv", {"s1": dict(lists[0], **changed), "s2": lists[1],
                                          "s5": dict(lists[0], p013=lists[0]["p013"])}, DAY2)
    assert run("--prices", tmp_path / "day2.csv", "--state-in", day1, "--state-out", tmp_path / "state2",
               "--effective-out", tmp_path / "effective2.csv") == 0
    stores = {r["store"]: r for r in read_csv(tmp_path / "state2" / "stores.csv")}
    assert (stores["s5"]["late_changes"], stores["s5"]["timely_changes"]) == ("3", "0")
    assert (stores["s3"]["late_changes"], stores["s3"]["timely_changes"]) == ("0", "0")  # not scraped
    rows = {(r["store"], r["product"]): r for r in read_csv(tmp_path / "state2" / "rows.csv")}
    assert rows[("s1", "p010")]["previous_price"] == f"{lists[0]['p010'] / 100:.2f}"
    assert rows[("s1", "p013")]["previous_price"] == ""
    served2 = {(r["store"], r["product"]): (round(float(r["price"]) * 100), r["source"])
               for r in read_csv(tmp_path / "effective2.csv")}
    assert served2[("s5", "p010")] == (lists[0]["p010"], "override")  # what s5 showed today, not the new price
    assert served2[("s3", "p010")] == (777, "inferred")

    day3 = "2026-11-03T06:00:00+00:00"
    write_scrapes(tmp_path / "day3.csv", {"s1": dict(lists[0], **changed, p020=555), "s2": lists[1]}, day3)
    assert run("--prices", tmp_path / "day3.csv", "--state-in", tmp_path / "state2",
               "--effective-out", tmp_path / "effective3.csv") == 0
    served3 = {(r["store"], r["product"]): (round(float(r["price"]) * 100), r["source"])
               for r in read_csv(tmp_path / "effective3.csv")}
    assert served3[("s5", "p020")] == (lists[0]["p020"], "late")  # fresh today: the price it replaced
    assert served3[("s5", "p010")] == (777, "stale_override")  # a day old: the late store has caught up
    assert served3[("s3", "p020")] == (555, "inferred")
