"""A new chain added, tried, scraped and inspected with commands only: real PostgreSQL, the demo site over loopback.

The chain is the demo site's table layout registered under a code of its own
from its shipped JSON file, as a user would register a site of theirs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pricegroups.cli import main
from pricegroups.scrape.profile import PROFILES_DIR, load_profile_file

CODE = "corner-shop"
TABLE = str(PROFILES_DIR / "table.json")  # the demo chain 'valueway' serves this layout


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    """Run `python -m pricegroups ARGS` in-process: (status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return status, out, err

    return run


@pytest.fixture
def snapshot_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "snapshots"
    monkeypatch.setenv("PRICEGROUPS_SNAPSHOT_ROOT", str(root))
    return root


def row_counts(db_url: str) -> dict[str, int]:
    """Rows of every table of the database (exact counts)."""
    with psycopg.connect(db_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in tables}


def add(cli, db_url: str, demo_site, profile: str = TABLE, code: str = CODE) -> tuple[int, str, str]:
    return cli("chains", "add", "--code", code, "--name", "Corner Shop", "--base-url", demo_site.base_url,
               "--profile", profile, "--requests-per-second", "0", "--database-url", db_url)


def listed_line(out: str, code: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(code + " "))


def test_a_new_chain_is_added_tried_scraped_and_inspected_with_commands(cli, db_url, demo_site, snapshot_root):
    status, out, _ = add(cli, db_url, demo_site)
    assert status == 0 and f"chain {CODE} added" in out

    status, out, _ = cli("chains", "list", "--database-url", db_url)
    assert status == 0 and listed_line(out, CODE)[-5:] == ["0", "0", "none", "never", demo_site.base_url]

    status, out, _ = cli("chains", "show", CODE, "--database-url", db_url)
    assert status == 0
    assert "stores: 0 active" in out and "groups: 0" in out and "last scrape: never" in out
    assert "/valueway/catalogue/{store_code}" in out  # the profile, as stored

    truth_stores = [s.code for s in demo_site.scenario.stores("valueway", 0)]
    status, out, _ = cli("chains", "try", "--profile", TABLE, "--base-url", demo_site.base_url,
                         "--requests-per-second", "0")
    assert status == 0, out
    assert f"{len(truth_stores)} store(s)" in out
    first = truth_stores[0]
    truth = {i.listing.sku: i for i in demo_site.scenario.items("valueway", first, 0)}
    items = re.findall(r"^  (\S+) +(\d+\.\d\d)  ", out.split("items (")[1].split("dropped (")[0], re.M)
    assert len(items) == min(len(truth), demo_site.scenario.chain("valueway").page_size)
    assert all(str(truth[sku].price.price) == price for sku, price in items)

    stores = truth_stores[:2]
    day = demo_site.scenario.date_of(0).isoformat()
    status, out, _ = cli("scrape", "--chain", CODE, "--sync", "--store", stores[0], "--store", stores[1],
                         "--date", day, "--database-url", db_url)
    assert status == 0, out
    items_scraped = sum(len(demo_site.scenario.items("valueway", s, 0)) for s in stores)

    status, out, _ = cli("chains", "show", CODE, "--database-url", db_url)
    assert status == 0
    assert f"stores: {len(truth_stores)} active" in out
    assert f"groups: {len(truth_stores)} (0 member(s)" in out
    assert (f"last scrape: run manual__{CODE}__{day} for {day}T00:00+00:00" in out
            and f"2 ok, 0 failed, 0 suspect, {items_scraped} items" in out)
    assert f"newest store data: {day}T00:00+00:00" in out
    for code in stores:
        assert re.search(rf"^  {code} .* last scraped {day}T00:00\+00:00$", out, re.M)

    status, out, _ = cli("chains", "list", "--database-url", db_url)
    assert listed_line(out, CODE)[-5:-2] == [str(len(truth_stores)), str(len(truth_stores)), "none"]


def test_trying_a_profile_writes_nothing_and_needs_no_database(cli, db_url, demo_site, snapshot_root, monkeypatch):
    assert add(cli, db_url, demo_site)[0] == 0
    before = row_counts(db_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    status, out, _ = cli("chains", "try", "--profile", TABLE, "--base-url", demo_site.base_url, "--pages", "2")
    assert status == 0, out
    assert row_counts(db_url) == before
    assert not snapshot_root.exists()
    assert out.count("\n  page ") == 2 and "more pages: next is" in out
    by_path = demo_site.stats()["by_path"]
    assert by_path["/robots.txt"] == {"200": 1}  # polite: robots.txt first, once
    assert by_path["/valueway/store-locator"] == {"200": 1}


def test_try_prints_every_dropped_item_with_its_reason(cli, demo_site, tmp_path):
    profile = load_profile_file("table")
    profile["items"].update(price_ceiling=3, max_drop_share=1)
    path = tmp_path / "ceiling.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    store = demo_site.scenario.stores("valueway", 0)[0].code
    status, out, _ = cli("chains", "try", "--profile", str(path), "--base-url", demo_site.base_url,
                         "--store", store, "--requests-per-second", "0")
    assert status == 0, out
    truth = {i.listing.sku: i.price.price for i in demo_site.scenario.items("valueway", store, 0)}
    kept = re.findall(r"^  (\S+) +\d+\.\d\d  ", out.split("dropped (")[0], re.M)
    dropped = dict(re.findall(r"^  (\S+) +(price \S+ above the ceiling 3)  raw: ", out, re.M))
    assert dropped and kept
    assert all(truth[sku] > 3 and reason == f"price {truth[sku]} above the ceiling 3"
               for sku, reason in dropped.items())
    assert all(truth[sku] <= 3 for sku in kept)
    assert len(kept) + len(dropped) == min(len(truth), demo_site.scenario.chain("valueway").page_size)
    assert f"dropped ({len(dropped)}):" in out


def test_a_page_that_fails_validation_shows_its_drops_and_exits_1(cli, demo_site, tmp_path):
    profile = load_profile_file("table")
    profile["items"].update(price_ceiling=0.5)
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    status, out, _ = cli("chains", "try", "--profile", str(path), "--base-url", demo_site.base_url,
                         "--requests-per-second", "0")
    assert status == 1
    assert "FAILED: " in out and "items failed validation" in out
    assert re.search(r"^dropped \((\d+)\):$", out, re.M)[1] != "0"
    assert "above the ceiling 0.5  raw: " in out


def test_update_changes_the_profile_and_the_rest_only_when_given(cli, db_url, demo_site, tmp_path):
    assert add(cli, db_url, demo_site)[0] == 0
    profile = load_profile_file("table")
    profile["catalogue"]["max_pages"] = 7
    path = tmp_path / "seven.json"
    path.write_text(json.dumps(profile), encoding="utf-8")

    status, out, _ = cli("chains", "update", CODE, "--profile", str(path), "--database-url", db_url)
    assert status == 0 and out.strip() == f"chain {CODE}: changed site_profile"
    status, out, _ = cli("chains", "show", CODE, "--profile-only", "--database-url", db_url)
    assert json.loads(out) == profile

    status, out, _ = cli("chains", "update", CODE, "--name", "Corner Shop Pty", "--requests-per-second", "2",
                         "--database-url", db_url)
    assert status == 0 and out.strip() == f"chain {CODE}: changed name, requests_per_second"
    status, out, _ = cli("chains", "show", CODE, "--database-url", db_url)
    assert f"chain {CODE}: Corner Shop Pty" in out and "rate limit: 2 requests/s per host" in out
    assert '"max_pages": 7' in out  # the profile was left as updated

    status, _, err = cli("chains", "update", "nowhere", "--name", "X", "--database-url", db_url)
    assert status == 2 and "error: unknown chain 'nowhere'" in err


def test_a_bad_chain_code_a_bad_profile_or_a_second_add_changes_nothing(cli, db_url, demo_site, tmp_path):
    status, _, err = add(cli, db_url, demo_site, code="Corner Shop")
    assert status == 2
    assert "error: chain code: expected text matching '^[a-z0-9][a-z0-9_-]*$', got 'Corner Shop'" in err

    profile = load_profile_file("table")
    profile["items"]["fields"]["price"] = {"selector": "td[@class='price']"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    status, _, err = add(cli, db_url, demo_site, profile=str(path))
    assert status == 2
    assert "profile key 'items.fields.price.selector': unknown key; expected one of xpath, parser" in err
    assert row_counts(db_url)["chains"] == 0

    assert add(cli, db_url, demo_site)[0] == 0
    before = row_counts(db_url)
    status, _, err = add(cli, db_url, demo_site)
    assert status == 2 and f"error: chain '{CODE}' exists already; change it with `chains update {CODE}`" in err
    assert row_counts(db_url) == before
