"""The pages say in one line what the evidence JSON says, and escape what they print."""

from __future__ import annotations

from datetime import datetime, timezone

from pricegroups.ui.pages import estimate_text, events_table, evidence_text, run_labels, run_page, scraped_table

MERGE = {"outcome": "match", "overlap": 1035, "agreeing": 1025, "rate": 0.9903, "own": [10, 0], "shared": 0,
         "timing": 1, "reason": "differences within one store's own deviations", "deduplicated": 1025}


def test_a_comparison_reads_as_outcome_agreement_deviations_and_reason():
    assert evidence_text("merged", MERGE) == (
        "match: 1,025 of 1,035 products agree (99.03%); own deviations 10/0, shared 0, timing 1 — differences "
        "within one store's own deviations; 1,025 duplicate rows dropped")


def test_an_anchor_change_reads_with_the_members_that_moved_it_and_its_comparison():
    text = evidence_text("anchor_replaced", {"reason": "anchor_drift", "checked": 2, "mismatched_old_anchor": 2,
                                             "matched_new_anchor": 1, "old_vs_new": {**MERGE, "outcome": "mismatch"}})
    assert text.startswith("anchor_drift: 2 of 2 members checked mismatched the old anchor, 1 matched the new one")
    assert "old vs new anchor: mismatch: 1,025 of 1,035" in text


def test_other_events_read_as_their_reason():
    assert evidence_text("reset", {"reason": "groups reset by operator", "chain": "acme"}) == "groups reset by operator"
    assert evidence_text("created", {}) == ""


def test_an_estimate_reads_with_its_interval_or_says_nothing_was_measured():
    assert estimate_text(None) == "nothing measured yet"
    assert estimate_text({"share": 0.0018, "low": 0.0012, "high": 0.0024, "samples": 40, "checked": 9000,
                          "wrong": 16}) == "0.18% wrong (95% interval 0.12%–0.24%) from 40 store(s), 9,000 price(s)"
    weighed = {"share": 0.0015, "low": 0.001, "high": 0.002, "samples": 40, "checked": 9000, "wrong": 20,
               "unverified_share": 0.75}
    assert estimate_text(weighed).endswith("; 75.00% of the prices served were not verified by their run")


def test_printed_values_are_escaped():
    event = {"event_id": 1, "at": datetime(2026, 3, 2, tzinfo=timezone.utc), "run_id": "r<1>", "chain": "acme",
             "kind": "merged", "group_id": 2, "other_group_id": 3, "store": "<b>S1", "other_store": "S2",
             "evidence": {"reason": "<script>"}}
    html = events_table("/pricegroups", [event], show_run=True)
    assert "<b>S1" not in html and "&lt;b&gt;S1" in html and "<script>" not in html
    assert "href='/pricegroups/runs/r%3C1%3E'" in html
    row = {"chain": "a'c", "stores": 2, "scraped": 1, "ok": 1, "failed": 0, "suspect": 0, "items": 3, "pages": 1,
           "http_errors": 0, "from_snapshot": 0, "roles": {"anchor": 1, "random": 0}}
    assert "data-chain='a&#x27;c'" in scraped_table([row]) and "anchor 1</td>" in scraped_table([row])


def test_runs_are_labelled_by_day_and_by_time_when_two_share_a_day():
    at = [datetime(2026, 3, 4, 6, tzinfo=timezone.utc), datetime(2026, 11, 30, 0, tzinfo=timezone.utc),
          datetime(2026, 11, 30, 1, 27, tzinfo=timezone.utc)]
    assert run_labels([{"logical_date": d} for d in at]) == ["Mar 4", "Nov 30 00:00", "Nov 30 01:27"]


def test_a_pruned_run_reads_as_pruned_with_its_setting_and_escapes_its_id():
    view = {"run": {"run_id": "r<1>", "logical_date": None}, "pruned": True,
            "pruned_by": {"setting": "run_keep_days", "days": 90},
            "decisions": {"counts": {}, "events": []}}
    html = run_page("/pricegroups", view)
    assert "<h1>Run r&lt;1&gt;</h1>" in html and "r<1>" not in html
    assert "pruned after run_keep_days = 90 days (docs/operations.md); its group events are kept." in html
    assert "No group event recorded by this run." in html and "Logical date" not in html
