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
