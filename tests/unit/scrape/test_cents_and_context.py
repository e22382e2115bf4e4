"""Money in minor units, and the store's context a request carries (headers, cookies, the secret)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pricegroups.errors import ConfigError, MoneyError
from pricegroups.scrape.context import ChainRequests, compile_request
from pricegroups.scrape.fields import PARSERS, build_item, minor_units
from pricegroups.scrape.profile import compile_profile, load_profile_file

cents = PARSERS["cents"]


@pytest.mark.parametrize("raw, expected", [
    (350, Decimal("3.50")), ("350", Decimal("3.50")), (" 99 ", Decimal("0.99")), (0, Decimal("0.00")),
    (Decimal("1200"), Decimal("12.00")), (Decimal("1200.0"), Decimal("12.00")), (123456789, Decimal("1234567.89")),
])
def test_cents_are_whole_minor_units_read_exactly(raw, expected):
    assert cents(raw, "price") == {"price": expected}


@pytest.mark.parametrize("raw", [3.5, "3.50", Decimal("350.5"), "abc", True, "1e400", [350], {"cents": 1}])
def test_anything_but_a_whole_number_of_cents_is_refused_with_a_reason(raw):
    with pytest.raises(MoneyError, match="price: not a whole number of minor units"):
        cents(raw, "price")


def test_no_amount_is_none_and_a_negative_one_fails_validation_not_parsing():
    assert cents(None, "was_price") == {"was_price": None} and cents("", "was_price") == {"was_price": None}
    values = {"sku": "1", "name": "Milk", **cents(-250, "price")}
    with pytest.raises(ValueError, match="price -2.50 is not positive"):
        build_item(values)


@pytest.mark.parametrize("scale, raw, expected", [
    (0, 5, Decimal("5.00")), (1, 35, Decimal("3.50")), (3, 3500, Decimal("3.50")), (3, "12340", Decimal("12.34")),
])
def test_a_scale_says_how_many_digits_the_minor_units_have(scale, raw, expected):
    assert minor_units(scale)(raw, "price") == {"price": expected}


def test_a_scaled_amount_finer_than_the_target_is_refused_but_a_unit_price_keeps_four_places():
    with pytest.raises(MoneyError, match="more decimals than 0.01"):
        minor_units(3)(3505, "price")
    assert minor_units(4)(12345, "unit_price") == {"unit_price": Decimal("1.2345")}


def test_a_profile_field_with_a_scale_parses_with_it():
    spec = load_profile_file("api")
    spec["items"]["fields"]["price"] = {"path": "price.cents", "parser": "cents", "scale": 3}
    rule = next(r for r in compile_profile(spec).fields if r.name == "price")
    assert rule.call(3500, "price") == {"price": Decimal("3.50")}


# ---- the store's context ----


def requests_for(spec: dict, lookup=None) -> ChainRequests:
    return ChainRequests(compile_request(spec), lookup)


def test_a_store_header_goes_on_catalogue_requests_and_static_headers_on_every_request():
    chain = requests_for({"headers": {"Accept": "application/json", "X-Store-Id": "{store_code}"}})
    assert chain.headers("VW001").values == {"Accept": "application/json", "X-Store-Id": "VW001"}
    assert chain.headers(None).values == {"Accept": "application/json"}  # the store locator's


def test_store_cookies_make_one_cookie_header():
    chain = requests_for({"cookies": {"gg_store": "{store_code}", "region": "au"}})
    assert chain.headers("GG001").values == {"Cookie": "gg_store=GG001; region=au"}
    assert chain.headers(None).values == {"Cookie": "region=au"}


def test_a_secret_from_the_environment_is_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv("DEMO_API_KEY", "s3cret")
    chain = requests_for({"headers": {"Authorization": "Bearer {secret}", "X-Store-Id": "{store_code}"},
                          "cookies": {"k": "{secret}", "store": "{store_code}"},
                          "secret": {"env": "DEMO_API_KEY"}})
    sent = chain.headers("S1")
    assert sent.values == {"Authorization": "Bearer s3cret", "X-Store-Id": "S1", "Cookie": "k=s3cret; store=S1"}
    assert sent.shown() == {"Authorization": "Bearer ***", "X-Store-Id": "S1", "Cookie": "k=***; store=S1"}
    assert "s3cret" not in repr(sent.shown())


def test_a_missing_secret_fails_every_request_that_needs_it_saying_where_it_was_looked_for(monkeypatch):
    monkeypatch.delenv("DEMO_API_KEY", raising=False)
    chain = requests_for({"headers": {"X-Api-Key": "{secret}", "X-Store-Id": "{store_code}"},
                          "secret": {"env": "DEMO_API_KEY"}})
    for store in ("S1", "S2"):
        with pytest.raises(ConfigError, match="environment variable DEMO_API_KEY is not set"):
            chain.headers(store)


def test_a_connection_secret_comes_from_the_injected_lookup_only():
    spec = {"headers": {"X-Api-Key": "{secret}"}, "secret": {"connection": "shop_api"}}
    asked = []
    chain = requests_for(spec, lambda conn_id: asked.append(conn_id) or "k3y")
    assert chain.headers("S1").values == {"X-Api-Key": "k3y"} and chain.headers("S2").values == {"X-Api-Key": "k3y"}
    assert asked == ["shop_api"]  # read once per chain
    with pytest.raises(ConfigError, match="connection 'shop_api' cannot be read here"):
        requests_for(spec).headers("S1")

    def broken(conn_id: str) -> str:
        raise LookupError(f"The conn_id `{conn_id}` isn't defined")

    with pytest.raises(ConfigError, match="connection 'shop_api' cannot be read: LookupError: The conn_id"):
        requests_for(spec, broken).headers("S1")
    with pytest.raises(ConfigError, match="has no secret"):
        requests_for(spec, lambda conn_id: "").headers("S1")
