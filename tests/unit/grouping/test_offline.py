"""The offline `group` command on CSV files: same engine, clear errors, no half-written output."""

from __future__ import annotations

import csv
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
