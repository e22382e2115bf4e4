"""DemoSite's Python API and the `demo-site` command, over real HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pricegroups.demo.generate import default_scenario
from pricegroups.demo.scenario import Scenario
from pricegroups.demo.server import DemoSite, DemoSiteProcess
from tests.integration.demo.scraping import fetch_catalogue
from tests.unit.demo.parsers import expected_rows
from tests.unit.demo.test_scenario_doc import example

ROOT = Path(__file__).resolve().parents[3]


def test_a_site_of_its_own_serves_a_custom_scenario_and_stops(make_demo_site):
    site = make_demo_site(example(), day=2)
    with requests.Session() as session:
        rows, pages = fetch_catalogue(session, site.base_url, "grid", "cornerstore", "CS2")
    assert pages == 2
    assert rows == expected_rows(site.scenario, "cornerstore", "CS2", 2)
    base = site.base_url
    site.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/robots.txt", timeout=2)


def test_demo_site_is_a_context_manager_and_counts_before_start():
    site = DemoSite(example(), day=0)
    site.set_day(1)
    with site:
        assert requests.get(site.base_url + "/_admin/day", timeout=5).json() == {"day": 1}
        assert requests.get(site.base_url + "/cornerstore/stores", timeout=5).status_code == 200
        assert site.stats()["total"] == 1
    with pytest.raises(RuntimeError):
        site.base_url


def test_a_site_in_a_child_process_serves_its_scenario_on_the_day_set():
    """DemoSiteProcess (the demo's site): the scenario it was given, its day set over the admin endpoint."""
    site = DemoSiteProcess(example(), day=1)
    site.start()
    try:
        site.set_day(2)
        assert site.day == 2
        with requests.Session() as session:
            rows, pages = fetch_catalogue(session, site.base_url, "grid", "cornerstore", "CS2")
        assert pages == 2 and rows == expected_rows(example(), "cornerstore", "CS2", 2)
        assert site.stats()["total"] == pages
        site.reset()
        assert site.stats()["total"] == 0
        base = site.base_url
    finally:
        site.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/robots.txt", timeout=2)
    with pytest.raises(RuntimeError):
        site.base_url


def test_the_command_serves_on_the_given_day_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, "-m", "pricegroups", "demo-site", "--port", "0", "--day", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert requests.get(url + "/_admin/day", timeout=5).json() == {"day": 3}
        assert "Disallow: /freshmart/checkout" in requests.get(url + "/robots.txt", timeout=5).text
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_command_stops_on_a_signal_even_when_started_with_sigint_ignored(signum):
    """A background job of a non-interactive shell (CI, `&`) inherits SIGINT ignored."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pricegroups", "demo-site", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert "http://127.0.0.1:" in proc.stdout.readline()
    finally:
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0


def test_the_command_writes_the_default_scenario(tmp_path):
    path = tmp_path / "scenario.json"
    subprocess.run([sys.executable, "-m", "pricegroups", "demo-site", "--write-scenario", str(path)],
                   cwd=ROOT, check=True, capture_output=True)
    assert Scenario.load(path).to_json() == default_scenario().to_json()
