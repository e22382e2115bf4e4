"""Retention settings: every default keeps what the rules read, and less is refused naming both settings."""

import pytest

from pricegroups.errors import ConfigError
from pricegroups.retention import RULES, TABLE_GROUPS, group_sizes, storage_counts
from pricegroups.settings import ESTIMATE_DAYS, Settings, load_settings


def test_the_defaults_keep_what_every_rule_reads():
    settings = Settings()
    settings.validate()
    for setting, needed, by, _ in settings.retention_needs():
        assert getattr(settings, setting) >= needed, (setting, by)


@pytest.mark.parametrize("overrides, names", [
    ({"lateness_days": 28, "lateness_keep_days": 7}, ("lateness_keep_days=7", "lateness_days")),
    ({"verification_keep_days": ESTIMATE_DAYS - 1}, ("verification_keep_days", "ESTIMATE_DAYS")),
    ({"spot_check_keep_days": 1}, ("spot_check_keep_days", "run_interval_hours")),
    ({"staging_keep_days": 31}, ("scrape_log_keep_days", "staging_keep_days")),
    ({"rejected_keep_days": 5}, ("rejected_keep_days", "staging_keep_days")),
    ({"run_keep_days": 20}, ("run_keep_days", "_keep_days")),
    ({"snapshot_keep_days": 0}, ("snapshot_keep_days",)),
])
def test_a_retention_below_what_a_rule_reads_is_refused_naming_both_settings(overrides, names):
    with pytest.raises(ConfigError) as refused:
        Settings().with_overrides(overrides)
    for name in names:
        assert name in str(refused.value)


def test_the_cadence_decides_how_many_days_of_spot_checks_the_rules_read():
    # at one run every three days, the runs before a change reach back 4.5 days: a week is enough, 3 is not
    Settings(run_interval_hours=72).validate()
    with pytest.raises(ConfigError, match="spot_check_keep_days=3 .*run_interval_hours"):
        Settings(run_interval_hours=72, spot_check_keep_days=3).validate()


def test_a_refusal_comes_from_the_environment_as_from_run_params():
    with pytest.raises(ConfigError, match="lateness_keep_days=7 .*lateness_days"):
        load_settings(environ={"PRICEGROUPS_LATENESS_KEEP_DAYS": "7"})


def test_every_rule_names_a_setting_and_runs_are_pruned_last():
    settings = Settings()
    assert all(isinstance(getattr(settings, rule.setting), int) for rule in RULES)
    assert RULES[-1].table == "runs"
    assert [r.table for r in RULES].index("spot_check_items") < [r.table for r in RULES].index("spot_checks")


def test_sizes_add_up_by_group_and_the_change_is_against_the_previous_run():
    tables = {"prices": 100, "products": 10, "scrape_log": 5, "group_events": 7, "schema_migrations": 1}
    grouped = group_sizes(tables)
    assert grouped == {"prices": 100, "catalogue": 10, "run_records": 5, "audit": 7, "other": 1, "total": 123}
    assert all(t not in TABLE_GROUPS["prices"] for t in TABLE_GROUPS["run_records"])
    first = storage_counts(grouped, 50, 2, None)
    assert "db_total_bytes_change" not in first and first["snapshot_files"] == 2
    second = storage_counts({**grouped, "total": 120}, 40, 1, first)
    assert second["db_total_bytes_change"] == -3 and second["snapshot_bytes_change"] == -10
