"""The Price groups page shows the newest run's storage by table group, with the change since the run before."""

from datetime import datetime, timezone

from pricegroups.ui.pages import groups_page, storage_table

MB = 1048576


def test_sizes_and_changes_are_shown_and_a_missing_change_is_left_blank():
    html = storage_table({"db_prices_bytes": 10 * MB, "db_prices_bytes_change": -MB // 2,
                          "db_total_bytes": 40 * MB, "snapshot_bytes": 3 * MB})
    assert "Database: prices</td><td>10.0 MB</td><td>−0.5 MB</td>" in html
    assert "Database: total</td><td>40.0 MB</td><td></td>" in html
    assert "Snapshot store (raw pages)</td><td>3.0 MB</td>" in html
    assert "catalogue" not in html  # not measured: no row


def test_the_groups_page_shows_storage_only_when_the_newest_run_measured_it():
    newest = {"run_id": "r1", "logical_date": datetime(2026, 3, 1, tzinfo=timezone.utc), "events": {}}
    assert "id='storage'" not in groups_page("/pg", [], None, [], newest)
    page = groups_page("/pg", [], None, [], {**newest, "storage": {"db_total_bytes": MB, "db_total_bytes_change": MB}})
    assert "id='storage'" in page and "+1.0 MB" in page
