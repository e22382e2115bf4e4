"""docs/site-profiles.md "API chain", run as written against the demo site's JSON API; and what `chains try`
shows of a JSON chain: its requests (the secret masked) and why a page gave no items."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import psycopg
import pytest

from pricegroups.cli import main
from pricegroups.scrape.profile import load_profile_file

DOC = Path(__file__).resolve().parents[2] / "docs" / "site-profiles.md"
DOC_SITE = "http://127.0.0.1:8765"  # the demo site's address as the docs write it


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def saved_files(text: str) -> dict[str, str]:
    """{file name: content} of every JSON block the text says to save ("Save this as `NAME`:")."""
    return {name: body for name, body in re.findall(r"Save this as `([^`]+)`:\s*```json\n(.*?)```", text, re.S)}


def commands(text: str) -> list[list[str]]:
    """Every `python -m pricegroups ...` line of the text's sh blocks, as argv after the module."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("python -m pricegroups "):
                found.append(shlex.split(line, comments=True)[3:])
    return found


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    def run(argv: list[str]) -> tuple[int, str]:
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return status, out + err

    return run


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """A user's directory: commands find the database and snapshot root in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("PRICEGROUPS_SNAPSHOT_ROOT", str(tmp_path / "snapshots"))
    return tmp_path


def test_the_api_chain_walkthrough_runs_as_written_from_nothing_to_scraped(cli, workdir, db_url, demo_site):
    text = section("API chain")
    files = saved_files(text)
    assert list(files) == ["pantry-api.json"]
    for name, body in files.items():
        (workdir / name).write_text(body)
    steps = commands(text)
    assert [s[:2] for s in steps] == [["chains", "try"], ["chains", "add"], ["scrape", "--chain"],
                                      ["chains", "show"]]
    outputs = []
    for argv in steps:
        status, out = cli([demo_site.base_url if arg == DOC_SITE else arg for arg in argv])
        assert status == 0, f"{shlex.join(argv)}\n{out}"
        outputs.append(out)

    tried = outputs[0]
    first = demo_site.scenario.stores("valueway", 0)[0].code
    assert f"GET {demo_site.base_url}/valueway/api/v1/products?limit=80  -> HTTP 200" in tried
    assert f"      X-Store-Id: {first}" in tried and "      Accept: application/json" in tried
    assert "result: ok" in tried

    stores = ["VW001", "VW002"]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT s.code, i.sku, i.price FROM scraped_items i JOIN stores s USING (store_id)
               JOIN chains c ON c.chain_id = i.chain_id WHERE c.code = 'pantry-api'""").fetchall()
    for store in stores:
        truth = {i.listing.sku: i.price.price for i in demo_site.scenario.items("valueway", store, 0)}
        assert {sku: price for code, sku, price in rows if code == store} == truth
    assert f"stores: {len(demo_site.scenario.stores('valueway', 0))} active" in outputs[3]


def test_chains_try_shows_each_request_with_the_secret_masked(cli, workdir, demo_site, monkeypatch):
    monkeypatch.setattr(demo_site.app, "api_key", "k3y")
    monkeypatch.setenv("PANTRY_API_KEY", "k3y")
    profile = load_profile_file("api")
    profile["request"]["headers"]["X-Api-Key"] = "{secret}"
    profile["request"]["secret"] = {"env": "PANTRY_API_KEY"}
    (workdir / "keyed.json").write_text(json.dumps(profile))
    status, out = cli(["chains", "try", "--profile", "keyed.json", "--base-url", demo_site.base_url,
                       "--requests-per-second", "0", "--pages", "2"])
    assert status == 0, out
    assert "k3y" not in out
    requests = out.split("requests (")[1].split("store locator")[0]
    assert f"GET {demo_site.base_url}/robots.txt  -> HTTP 200" in requests
    locator_pages = math.ceil(len(demo_site.scenario.stores("valueway", 0)) / 25)
    assert requests.count("X-Api-Key: ***") == locator_pages + 2  # every locator page, two catalogue pages
    assert f"GET {demo_site.base_url}/valueway/api/v1/products?limit=80&offset=80  -> HTTP 200" in requests


def test_chains_try_explains_a_json_page_that_gave_no_items(cli, workdir, demo_site):
    profile = load_profile_file("api")
    profile["items"]["path"] = "products"
    profile["items"].pop("count_path")
    (workdir / "wrong.json").write_text(json.dumps(profile))
    status, out = cli(["chains", "try", "--profile", "wrong.json", "--base-url", demo_site.base_url,
                       "--requests-per-second", "0"])
    assert status == 1
    assert ("why no items: the response was JSON but items.path 'products' matched nothing;"
            " its top-level keys: store, items, count, total, offset, limit, links") in out
    assert "result: no items found" in out


def test_chains_add_refuses_a_json_profile_with_a_bad_jmespath_naming_file_and_key(cli, workdir, db_url, demo_site):
    profile = load_profile_file("api")
    profile["items"]["fields"]["price"]["path"] = "price.[cents"
    (workdir / "bad.json").write_text(json.dumps(profile))
    status, out = cli(["chains", "add", "--code", "bad-api", "--name", "Bad", "--base-url", demo_site.base_url,
                       "--profile", "bad.json"])
    assert status == 2
    assert "error: profile file 'bad.json': profile key 'items.fields.price.path': expected a JMESPath" in out
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM chains WHERE code = 'bad-api'").fetchone()[0] == 0
