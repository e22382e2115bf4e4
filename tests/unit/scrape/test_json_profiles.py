"""A json-layout profile is checked when it is compiled: every mistake is refused naming its key."""

from __future__ import annotations

import copy
import json

import pytest

from pricegroups.errors import ConfigError
from pricegroups.scrape.profile import compile_profile, load_profile_file, read_profile_file


@pytest.fixture
def api() -> dict:
    return copy.deepcopy(load_profile_file("api"))


def refused(spec: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        compile_profile(spec)
    return str(caught.value)


def test_the_shipped_app_profiles_compile():
    for name in ("api", "nextdata"):
        compiled = compile_profile(load_profile_file(name))
        assert compiled.layout == "json" and compiled.json is not None and compiled.request.names_store()


@pytest.mark.parametrize("where", ["catalogue", "locator"])
def test_an_unknown_pagination_kind_is_refused_naming_the_key(api, where):
    api[where]["pagination"] = {"kind": "infinite_scroll"}
    message = refused(api)
    assert f"profile key '{where}.pagination.kind'" in message and "'infinite_scroll'" in message
    assert "page_param, offset, cursor, next_link, none" in message


def test_a_json_pagination_kind_is_refused_in_an_html_profile_saying_why():
    table = copy.deepcopy(load_profile_file("table"))
    table["catalogue"]["pagination"] = {"kind": "cursor", "path": "next"}
    assert "offset and cursor are json layout kinds" in refused(table)


def test_a_pagination_key_of_another_kind_is_refused(api):
    api["catalogue"]["pagination"] = {"kind": "cursor", "path": "next", "total_path": "total"}
    assert "'catalogue.pagination.total_path': unknown key" in refused(api)
    api["catalogue"]["pagination"] = {"kind": "offset", "limit": 80}
    assert "'catalogue.pagination.limit_param'" in refused(api)


@pytest.mark.parametrize("key, expression", [
    ("items.fields.price.path", "price.[cents"),
    ("items.path", "items[?"),
    ("items.count_path", "count ||"),
    ("catalogue.page_marker", "type(items) = 'array'"),
    ("catalogue.pagination.total_path", "total)"),
    ("locator.stores", "stores[*"),
    ("locator.closed", "status == 'closed"),
])
def test_a_jmespath_that_does_not_compile_is_refused_naming_the_key(api, key, expression):
    target, *path, last = key.split(".")
    node = api[target]
    for part in path:
        node = node[part]
    node[last] = expression
    message = refused(api)
    assert message.startswith(f"profile key {key!r}: expected a JMESPath expression") and "invalid JMESPath" in message


def test_a_header_template_naming_an_unknown_field_is_refused(api):
    api["request"]["headers"]["X-Store-Id"] = "{store}"
    assert refused(api) == ("profile key 'request.headers.X-Store-Id': unknown template field {store};"
                            " expected {store_code} or {secret}")
    api["request"]["headers"]["X-Store-Id"] = "{store_code!r}"
    assert "takes no format or conversion" in refused(api)


def test_a_cookie_template_naming_an_unknown_field_is_refused(api):
    api["request"]["cookies"] = {"store": "{shop_id}"}
    assert "profile key 'request.cookies.store': unknown template field {shop_id}" in refused(api)


def test_a_secret_template_needs_a_secret_source_and_never_goes_in_a_url(api):
    api["request"]["headers"]["X-Api-Key"] = "{secret}"
    assert "'request.headers.X-Api-Key': names {secret} but the profile has no 'request.secret'" in refused(api)
    api["request"]["secret"] = {"env": "DEMO_API_KEY"}
    compile_profile(api)
    api["catalogue"]["url_template"] = "/valueway/api/v1/products?key={secret}"
    assert "a secret goes in a header or a cookie" in refused(api)


@pytest.mark.parametrize("secret, expected", [
    ({"value": "hunter2"}, "'request.secret.value': unknown key; expected one of env, connection"),
    ("hunter2", "the secret itself never goes in a profile"),
    ({"env": "NOT A NAME"}, "'request.secret.env': expected an environment variable name"),
    ({"env": "A", "connection": "b"}, "expected {'env': 'VARIABLE'} or {'connection': 'conn_id'}"),
    ({"connection": ""}, "'request.secret.connection': expected a connection id"),
])
def test_a_secret_is_only_ever_a_place_to_read_it_from(api, secret, expected):
    api["request"]["secret"] = secret
    assert expected in refused(api)


def test_the_scrapers_own_headers_are_not_the_profiles_to_set(api):
    api["request"]["headers"]["User-Agent"] = "Mozilla/5.0"
    assert "'request.headers.User-Agent': the scraper sets this header itself" in refused(api)


def test_the_store_must_be_chosen_somewhere(api):
    del api["request"]["headers"]["X-Store-Id"]
    assert "'catalogue.url_template': expected a path containing {store_code}" in refused(api)
    api["catalogue"]["url_template"] = "/valueway/api/v1/products?store={store_code}"
    assert compile_profile(api).url_template.endswith("{store_code}")


def test_a_scale_belongs_to_the_cents_parser_only(api):
    api["items"]["fields"]["price"] = {"path": "price.cents", "parser": "money", "scale": 2}
    assert "'items.fields.price.scale': only the 'cents' parser takes a scale" in refused(api)
    api["items"]["fields"]["price"] = {"path": "price.cents", "parser": "cents", "scale": 9}
    assert "'items.fields.price.scale': expected digits of minor units, from 0 to 6" in refused(api)


def test_html_keys_in_a_json_profile_and_json_keys_in_an_html_one_are_refused(api):
    api["items"]["xpath"] = "//tr"
    assert "'items.xpath': not a key of the json layout" in refused(api)
    table = copy.deepcopy(load_profile_file("table"))
    table["items"]["path"] = "items"
    assert "'items.path': a key of the json layout, not of 'html'" in refused(table)


def test_a_profile_file_error_names_the_file_and_the_key(api, tmp_path):
    api["catalogue"]["pagination"]["kind"] = "scroll"
    path = tmp_path / "mychain.json"
    path.write_text(json.dumps(api))
    with pytest.raises(ConfigError, match=r"profile file '.*mychain\.json': profile key 'catalogue\.pagination\.kind'"):
        read_profile_file(path)
