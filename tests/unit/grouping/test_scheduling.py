"""grouping/scheduling.py: every reason a store is scraped, in one ordered table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pricegroups.grouping.scheduling import PLAN, REASONS, RECORDED, RESCRAPE, first_reasons

ROOT = Path(__file__).resolve().parents[3]


def test_each_store_keeps_the_first_reason_of_its_pass_and_the_run_restriction_holds():
    reasons = first_reasons(RESCRAPE, [("forced", [3, 1]), ("complement", [1, 2, 7]), ("spot", [2, 4, 5])],
                            allowed={1, 2, 3, 4})
    assert reasons == {1: "forced", 2: "complement", 3: "forced", 4: "spot"}


def test_reasons_out_of_the_tables_order_are_refused():
    with pytest.raises(ValueError, match="out of the table's order"):
        first_reasons(RESCRAPE, [("spot", [1]), ("forced", [1])])
    with pytest.raises(ValueError):
        first_reasons(PLAN, [("spot", [1])])  # not a reason of the plan


def test_the_recorded_reasons_are_the_ones_the_database_accepts():
    """The newest CHECK constraint on verifications.reason lists exactly the table's recorded reasons."""
    checks = [re.search(r"CHECK \(reason IN \(([^)]*)\)\)", path.read_text())
              for path in sorted((ROOT / "sql").glob("*.sql"))]
    newest = [m for m in checks if m][-1]
    assert set(re.findall(r"'(\w+)'", newest.group(1))) == set(RECORDED)
    assert len({(r.name, r.scraped_in) for r in REASONS}) == len(REASONS)
