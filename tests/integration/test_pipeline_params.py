"""Store codes in a run's params become store ids, or a clear error."""

import pytest

from pricegroups.errors import ConfigError
from pricegroups.pipeline import store_ids_for_codes
from pricegroups.stores import StoreInfo, ensure_chain, ensure_stores
from tests.factories import T0


@pytest.fixture
def two_chains(conn):
    acme = ensure_chain(conn, "acme", "Acme")
    zeta = ensure_chain(conn, "zeta", "Zeta")
    a = ensure_stores(conn, acme, [StoreInfo("S1"), StoreInfo("A2")], at=T0)
    z = ensure_stores(conn, zeta, [StoreInfo("S1"), StoreInfo("Z2")], at=T0)
    conn.commit()
    return a, z


def test_codes_unique_across_chains_or_qualified_by_chain_resolve(conn, two_chains):
    a, z = two_chains
    assert store_ids_for_codes(conn, ["A2", "zeta/S1", "A2"]) == sorted({a["A2"], z["S1"]})


@pytest.mark.parametrize("codes, message", [
    (["S1"], "exists in several chains; write it as chain/S1"),
    (["nope"], "unknown store 'nope'"),
    (["acme/Z2"], "unknown store 'acme/Z2'"),
    (["omega/S1"], "unknown store 'omega/S1'"),
])
def test_unknown_or_ambiguous_codes_are_refused(conn, two_chains, codes, message):
    with pytest.raises(ConfigError, match=message):
        store_ids_for_codes(conn, codes)


def test_a_window_set_in_the_environment_holds_unless_the_run_gives_one(conn, monkeypatch):
    from datetime import datetime, timezone

    from pricegroups.pipeline import DEFAULT_PARAMS, start

    day = datetime(2026, 3, 3, 6, tzinfo=timezone.utc)
    monkeypatch.setenv("PRICEGROUPS_WINDOW_HOURS", "48")
    assert start(conn, "scheduled__1", day, {}, "scheduled").load_settings().window_hours == 48
    assert start(conn, "scheduled__1", day, dict(DEFAULT_PARAMS), "scheduled").load_settings().window_hours == 48
    given = start(conn, "manual__1", day, {**DEFAULT_PARAMS, "window_hours": 24}, "manual")
    assert given.load_settings().window_hours == 24, "a run param the user gave wins"
    monkeypatch.delenv("PRICEGROUPS_WINDOW_HOURS")
    assert start(conn, "scheduled__2", day, {}, "scheduled").load_settings().window_hours == 72
