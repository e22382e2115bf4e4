"""Groups and stores as the grouping core sees them, and the decisions it returns.

Decisions are plain data. The repository applies them to PostgreSQL, the
offline `GroupBook` applies them in memory; both read the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Hashable, Union

from pricegroups.grouping.comparer import Comparison
from pricegroups.grouping.pricing import sort_key

EPOCH = datetime(1970, 1, 1).astimezone()


@dataclass(frozen=True)
class StoreState:
    store: Hashable
    group: Hashable
    scraped_at: datetime | None = None  # last successful scrape (freshness)
    verified_at: datetime | None = None  # last comparison with its anchor that matched
    failures: int = 0  # consecutive failed scrapes
    active: bool = True
    late: int = 0  # changes it showed late / on time as a member (lateness.py; stores.late_changes, timely_changes)
    on_time: int = 0


@dataclass(frozen=True)
class GroupState:
    group: Hashable
    chain: Hashable
    anchor: Hashable
    members: tuple = ()  # stores other than the anchor, sorted
    created_at: datetime = EPOCH

    @property
    def size(self) -> int:
        return 1 + len(self.members)

    def rank(self) -> tuple:
        """Merge precedence: larger first, then older, then smaller id (total, data-derived)."""
        return (-self.size, self.created_at, sort_key(self.group))



@dataclass(frozen=True)
class Verify:
    """A member matched its anchor: mark it verified and drop its rows equal to the anchor's."""

    group: Hashable
    store: Hashable
    anchor: Hashable
    comparison: Comparison
    kind = "verified"


@dataclass(frozen=True)
class Eject:
    """A store mismatched its anchor: it leaves into a new group of its own."""

    group: Hashable
    store: Hashable
    anchor: Hashable
    comparison: Comparison
    kind = "member_ejected"


@dataclass(frozen=True)
class ReplaceAnchor:
    """The group keeps its members under a new anchor (drift or succession)."""

    group: Hashable
    old_anchor: Hashable
    new_anchor: Hashable
    reason: str  # "anchor_drift" | "anchor_failed" | "representative" | "coverage" | "punctual"
    evidence: dict[str, Any]
    kind = "anchor_replaced"


@dataclass(frozen=True)
class Merge:
    """Group `group` (anchor `store`) joins group `into`, whose anchor `anchor` stays."""

    group: Hashable
    into: Hashable
    store: Hashable
    anchor: Hashable
    comparison: Comparison
    kind = "merged"


Decision = Union[Verify, Eject, ReplaceAnchor, Merge]
