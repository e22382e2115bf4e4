"""Fixtures for the demo chain site (a pytest plugin, listed in tests/conftest.py).

One server per test session serves the default scenario; `demo_site` hands it
to a test reset to day 0 with no added events and zeroed statistics, so tests
are isolated without paying for a new server or a cold page cache each time.
A test that needs its own scenario uses `make_demo_site(scenario, day)`.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from pricegroups.demo.generate import default_scenario
from pricegroups.demo.scenario import Scenario
from pricegroups.demo.server import DemoSite


@pytest.fixture(scope="session")
def demo_scenario() -> Scenario:
    """The built-in scenario (generated once per session; treat as read-only)."""
    return default_scenario()


@pytest.fixture(scope="session")
def _demo_site_server(demo_scenario: Scenario) -> Iterator[DemoSite]:
    site = DemoSite(demo_scenario, day=0)
    site.start()
    yield site
    site.stop()


@pytest.fixture
def demo_site(_demo_site_server: DemoSite) -> DemoSite:
    """The demo site on loopback (`.base_url`, `.set_day(d)`, `.add_event(...)`, `.stats()`, `.scenario`)."""
    site = _demo_site_server
    site.clear_events()
    site.set_day(0)
    site.reset()
    return site


@pytest.fixture
def make_demo_site() -> Iterator[Callable[..., DemoSite]]:
    """A factory: `make_demo_site(scenario=None, day=0)` starts a site of its own, stopped after the test."""
    started: list[DemoSite] = []

    def make(scenario: Scenario | None = None, day: int = 0) -> DemoSite:
        site = DemoSite(scenario, day)
        site.start()
        started.append(site)
        return site

    yield make
    for site in started:
        site.stop()
