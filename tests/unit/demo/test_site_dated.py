"""Dated paths: a run under a scheduler sees the simulated day of its logical date."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pricegroups.demo.site import SiteApp
from tests.unit.demo.test_scenario_doc import example


@pytest.fixture
def app() -> SiteApp:
    return SiteApp(example(), day=0)


def test_a_dated_path_serves_that_dates_day_whatever_the_settable_day(app):
    epoch = app.scenario.start_date
    day2 = (epoch + timedelta(days=2)).isoformat()
    app.set_day(1)
    dated = app.handle("GET", f"/on/{day2}/cornerstore/store/CS1/products")
    app.set_day(2)
    undated = app.handle("GET", "/cornerstore/store/CS1/products")
    assert dated.status == undated.status == 200
    # the same page as the settable day 2 shows, its site links kept under the dated prefix
    assert dated.body == undated.body.replace(b'href="/', f'href="/on/{day2}/'.encode())
    assert b'href="/cornerstore/' not in dated.body
    assert app.day_of(epoch + timedelta(days=2)) == 2


@pytest.mark.parametrize("date", ["2026-13-01", "yesterday", "2000-01-01"])
def test_a_bad_or_pre_epoch_date_is_not_found(app, date):
    assert app.handle("GET", f"/on/{date}/cornerstore/stores").status == 404
