"""Run-level rules that need no database: params, the run context, scrape batches' syncs and spot checks."""

import pytest

from pricegroups.errors import ConfigError
from pricegroups.pipeline import RunContext, validate_params


def test_default_params_are_valid():
    assert validate_params({}) == {"stores": [], "chains": [], "full_scrape": False, "window_hours": None,
                                   "dry_run": False}, "window_hours None: the settings' window"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"window_hours": 0}, "window_hours"),
        ({"window_hours": True}, "window_hours"),
        ({"window_hours": "72"}, "window_hours"),
        ({"stores": "FM001"}, "stores must be a list"),
        ({"stores": [""]}, "stores must be a list"),
        ({"chains": [3]}, "chains must be a list"),
        ({"chains": ["Fresh Mart"]}, "chain code: expected"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"full_scrap": True}, "unknown param"),
    ],
)
def test_bad_params_fail_fast_with_a_clear_message(params, message):
    with pytest.raises(ConfigError, match=message):
        validate_params(params)


def test_run_context_round_trips_through_xcom():
    context = RunContext("r1", "2026-03-02T06:00:00+00:00", ["freshmart"], [1, 2], False, True, {"window_hours": 48},
                         backfill=True)
    assert RunContext.from_xcom(context.to_xcom()) == context
    assert context.load_settings().window_hours == 48


def test_each_chain_syncs_its_locator_once_even_with_nothing_planned():
    from pricegroups.pipeline import with_locator_syncs

    batches = [{"chain": "a", "store_ids": [1, 2]}, {"chain": "a", "store_ids": [3]}, {"chain": "b", "store_ids": [9]}]
    result = with_locator_syncs(batches, ["a", "b", "c"])
    assert [(b["chain"], b["store_ids"], b["sync"]) for b in result] == [
        ("a", [1, 2], True), ("a", [3], False), ("b", [9], True), ("c", [], True)]


@pytest.mark.parametrize("counts, down", [
    ({"chain": "a", "stores": 4, "failed_store_ids": [1, 2, 3], "gone_store_ids": []}, True),
    ({"chain": "a", "stores": 4, "failed_store_ids": [1, 2], "gone_store_ids": []}, False),  # half: partial
    ({"chain": "a", "stores": 2, "failed_store_ids": [1, 2], "gone_store_ids": [1, 2]}, False),  # closed stores
    ({"chain": "a", "stores": 1, "failed_store_ids": [1], "gone_store_ids": []}, True),
    ({"chain": "a", "stores": 0, "failed_store_ids": [], "gone_store_ids": []}, False),
])
def test_a_batch_is_down_when_more_than_the_share_of_its_stores_failed(counts, down):
    from pricegroups.pipeline import batch_down

    assert (batch_down(counts, 0.5) is not None) == down


def test_spot_checks_are_dealt_round_robin_over_each_chains_batches():
    from pricegroups.pipeline import with_spot_checks

    batches = [{"chain": "a", "store_ids": [1], "sync": True}, {"chain": "a", "store_ids": [2], "sync": False}]
    result = with_spot_checks(batches, {"a": [10, 11, 12], "b": [20]})
    assert [(b["chain"], b["store_ids"], b["spot_ids"]) for b in result] == [
        ("a", [1], [10, 12]), ("a", [2], [11]), ("b", [], [20])]
    assert batches[0].get("spot_ids") is None  # the input is not changed
