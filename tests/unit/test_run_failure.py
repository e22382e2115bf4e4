"""When a run must end failed: every planned scrape batch recorded its outcome, and no chain was down."""

from pricegroups.pipeline import batch_key, missing_batches, run_failure

PLANNED = [
    {"chain": "freshmart", "store_ids": [3, 1, 2], "sync": True},
    {"chain": "freshmart", "store_ids": [7, 9], "sync": False},
    {"chain": "valueway", "store_ids": [], "sync": True},  # nothing planned: it only syncs the locator
]


def test_a_batch_is_keyed_by_its_chain_and_first_planned_store_or_its_sync():
    assert [batch_key(b) for b in PLANNED] == ["freshmart:1", "freshmart:7", "valueway:sync"]


def test_every_planned_batch_that_recorded_nothing_is_missing():
    recorded = {"freshmart:1": {"ok": 3}, "valueway:sync": {"ok": 0, "new_stores": 2}}
    assert missing_batches(PLANNED, recorded) == ["freshmart:7"]
    assert missing_batches(PLANNED, {**recorded, "freshmart:7": {"ok": 2}}) == []
    assert missing_batches(PLANNED, {}) == ["freshmart:1", "freshmart:7", "valueway:sync"]
    assert missing_batches([], {"freshmart:1": {}}) == []  # a record of no planned batch (an earlier plan)


def test_a_run_fails_naming_chains_down_and_batches_not_scraped():
    assert run_failure({"chains_down": [], "batches_not_scraped": []}) is None
    assert run_failure({}) is None
    assert run_failure({"chains_down": ["valueway"]}) == "scrape failed for chain(s) valueway"
    message = run_failure({"chains_down": ["valueway"], "batches_not_scraped": ["freshmart:7", "greengrocer:sync"]})
    assert message.startswith("scrape failed for chain(s) valueway; ")
    assert "freshmart:7, greengrocer:sync" in message
