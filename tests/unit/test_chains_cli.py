"""`chains` arguments and profiles are checked before anything is fetched or stored, with messages that say what is wrong.

Every test here points DATABASE_URL at a server that does not exist: a command
that touched the database before refusing its input would fail with a
connection error instead of the expected message.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pricegroups.cli import main
from pricegroups.scrape.profile import PROFILES_DIR, load_profile_file

NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
GRID = str(PROFILES_DIR / "grid.json")


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", NO_DATABASE)


def refused(capsys: pytest.CaptureFixture, *argv: str) -> str:
    """Run the CLI expecting a usage or validation error (status 2); its stderr."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    captured = capsys.readouterr()
    assert status == 2, captured
    assert "Traceback" not in captured.err
    return captured.err


def profile_file(tmp_path: Path, profile: object, name: str = "mine.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(profile) if not isinstance(profile, str) else profile, encoding="utf-8")
    return str(path)


def add_args(profile: str, *extra: str) -> list[str]:
    return ["chains", "add", "--code", "mine", "--name", "Mine", "--base-url", "http://127.0.0.1:9",
            "--profile", profile, *extra]


@pytest.mark.parametrize("argv,message", [
    (["chains", "add", "--code", "mine", "--name", "Mine", "--base-url", "http://x"],
     "the following arguments are required: --profile"),
    (add_args(GRID, "--requests-per-second", "fast"),
     "argument --requests-per-second: expected a number of requests per second, got 'fast'"),
    (add_args(GRID, "--requests-per-second", "-1"),
     "argument --requests-per-second: requests_per_second must be from 0 (no limit) to 1000, got -1.0"),
    (["chains", "add", "--code", "mine", "--name", "Mine", "--base-url", "shop.example", "--profile", GRID],
     "argument --base-url: base_url must be an http(s) URL, got 'shop.example'"),
    (["chains", "try", "--profile", GRID, "--base-url", "http://x", "--pages", "0"],
     "argument --pages: expected a positive whole number, got '0'"),
    (["chains", "update"], "the following arguments are required: CODE"),
    (["chains", "update", "mine"],
     "error: nothing to update: give --profile, --base-url, --name or --requests-per-second"),
    (["chains", "frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_are_refused_with_status_2_and_a_reason(capsys, argv, message):
    assert message in refused(capsys, *argv)


def test_a_missing_profile_file_is_named(capsys, tmp_path):
    missing = str(tmp_path / "nope.json")
    assert f"error: profile file '{missing}': no such file" in refused(capsys, *add_args(missing))


def test_a_profile_that_is_not_json_says_where(capsys, tmp_path):
    path = profile_file(tmp_path, '{\n  "format": 1,\n  "layout": "html"\n  "items": {}\n}')
    assert "not valid JSON at line 4 column 3: Expecting ','" in refused(capsys, *add_args(path))


@pytest.mark.parametrize("command", ["add", "update", "try"])
def test_a_bad_profile_key_is_named_with_what_was_expected(capsys, tmp_path, command):
    profile = load_profile_file("grid")
    profile["items"]["fields"]["price"] = {"xpath": 3}
    path = profile_file(tmp_path, profile)
    argv = {
        "add": add_args(path),
        "update": ["chains", "update", "mine", "--profile", path],
        "try": ["chains", "try", "--profile", path, "--base-url", "http://127.0.0.1:9"],
    }[command]
    err = refused(capsys, *argv)
    assert f"error: profile file '{path}': profile key 'items.fields.price.xpath':" \
           f" expected a non-empty XPath string, got 3" in err


def test_a_misspelt_key_is_refused_not_ignored(capsys, tmp_path):
    profile = load_profile_file("table")
    profile["catalogue"]["closed_markr"] = profile["catalogue"].pop("closed_marker")
    err = refused(capsys, *add_args(profile_file(tmp_path, profile)))
    assert "profile key 'catalogue.closed_markr': unknown key; expected one of url_template, pagination," in err


def test_trying_a_profile_without_a_locator_needs_a_store(capsys, tmp_path):
    profile = copy.deepcopy(load_profile_file("grid"))
    del profile["locator"]
    err = refused(capsys, "chains", "try", "--profile", profile_file(tmp_path, profile),
                  "--base-url", "http://127.0.0.1:9")
    assert "error: the profile has no 'locator' to find a store with: give --store CODE" in err


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    path = profile_file(tmp_path, {"format": 1, "catalogue": {"url_template": "/s/{store_code}"},
                                   "items": {"xpath": "//li", "fields": {"sku": "@id", "name": "b"}}})
    done = subprocess.run(
        [sys.executable, "-m", "pricegroups", "chains", "try", "--profile", path, "--base-url", "http://127.0.0.1:9",
         "--store", "S1"],
        capture_output=True, text=True, timeout=60, env={"DATABASE_URL": NO_DATABASE, "PATH": ""},
        cwd=Path(__file__).resolve().parents[2] / "plugins",
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: profile file '{path}': profile key 'items.fields':"
                           " expected rules for sku, name, price; lacks price\n")
