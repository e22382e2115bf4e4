"""What a run is, from Airflow's run type: backfills and manual runs for old dates leave the groups alone."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pricegroups.errors import ConfigError
from pricegroups.pipeline import start
from pricegroups.scrape.service import ChainConfig, register_chain
from pricegroups.settings import Settings
from tests.factories import T0

D1 = datetime(2026, 3, 3, 6, tzinfo=timezone.utc)
D2 = datetime(2026, 3, 4, 6, tzinfo=timezone.utc)


def test_run_type_decides_what_is_a_backfill(conn):
    assert not start(conn, "scheduled__2", D2, {}, "scheduled").backfill
    assert start(conn, "backfill__2", D2, {}, "backfill").backfill, "a backfill even of the newest date"
    assert not start(conn, "scheduled__1", D1, {}, "scheduled").backfill, "scheduled runs maintain groups"
    assert start(conn, "manual__1", D1, {}, "manual").backfill, "a manual run older than a daily run"
    recorded = dict(conn.execute("SELECT run_id, backfill FROM runs").fetchall())
    assert recorded == {"scheduled__2": False, "backfill__2": True, "scheduled__1": False, "manual__1": True}


def test_a_backfill_of_a_later_date_does_not_turn_manual_runs_into_backfills(conn):
    start(conn, "backfill__2", D2, {}, "backfill")
    assert not start(conn, "manual__1", D1, {}, "manual").backfill


@pytest.mark.parametrize("params, run_type, message", [
    ({"stores": ["NOPE"]}, "manual", "unknown store 'NOPE'"),
    ({"chains": ["nope"]}, "manual", "unknown chain code"),
    ({"bogus": 1}, "manual", "unknown param"),
    ({}, "sideways", "unknown run type"),
])
def test_bad_params_fail_at_start_with_one_clear_message(conn, params, run_type, message):
    with pytest.raises(ConfigError, match=message):
        start(conn, "manual__x", D1, params, run_type)


def test_a_chain_has_its_own_rate_limit_and_a_dated_base_url(conn):
    register_chain(conn, "demo", "Demo", "http://127.0.0.1:9/on/{ds}", _profile(), requests_per_second=0)
    from pricegroups.scrape.service import load_chain

    chain = load_chain(conn, "demo")
    assert chain.on(D1).base_url == "http://127.0.0.1:9/on/2026-03-03"
    assert chain.polite(Settings()).requests_per_second == 0
    assert ChainConfig(1, "x", "http://x", chain.profile).polite(Settings()).requests_per_second == 5.0
    with pytest.raises(ConfigError, match="only the field"):
        register_chain(conn, "demo", "Demo", "http://127.0.0.1:9/{date}", _profile())
    with pytest.raises(ConfigError, match="requests_per_second"):
        register_chain(conn, "demo", "Demo", "http://127.0.0.1:9", _profile(), requests_per_second=-1)


def _profile() -> dict:
    from pricegroups.demo.chains import demo_profiles

    return demo_profiles("http://127.0.0.1:9")[0][3]
