"""Settings: defaults, environment, run overrides, and clear errors for bad values."""

from decimal import Decimal

import pytest

from pricegroups.errors import ConfigError
from pricegroups.settings import Settings, load_settings


def test_defaults_follow_the_design():
    s = Settings()
    assert (s.window_hours, s.max_member_deviation, s.min_overlap_products, s.verify_interval_days) == (72, 0.01, 30, 7)
    assert (s.verify_budget_share, s.verify_random_share) == (0.10, 0.5)


def test_environment_then_overrides_win():
    s = load_settings({"window_hours": 48}, environ={"PRICEGROUPS_WINDOW_HOURS": "24", "PRICEGROUPS_PRICE_CEILING": "500"})
    assert s.window_hours == 48
    assert s.price_ceiling == Decimal("500")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"window_hours": 0}, "window_hours must be positive"),
        ({"window_hours": "soon"}, "not a valid int"),
        ({"window_hours": 1.5}, "not a valid int"),
        ({"max_member_deviation": 0.7}, "max_member_deviation"),
        ({"match_threshold": 0.98}, "unknown setting"),
        ({"verify_random_share": 2}, "verify_random_share"),
        ({"no_such_setting": 1}, "unknown setting"),
        ({"price_ceiling": "-3"}, "price_ceiling must be positive"),
    ],
)
def test_bad_values_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides, environ={})


def test_current_pricing_is_what_was_scraped_within_the_window_before_the_logical_date():
    from datetime import datetime, timedelta, timezone

    settings = load_settings({"window_hours": 48}, environ={})
    as_of = datetime(2026, 3, 3, 6, tzinfo=timezone.utc)
    assert settings.current_since(as_of) == as_of - timedelta(hours=48)
    assert settings.is_current(as_of - timedelta(hours=48), as_of), "the window's first instant is in it"
    assert not settings.is_current(as_of - timedelta(hours=48, seconds=1), as_of)
    assert not settings.is_current(None, as_of), "never scraped"
