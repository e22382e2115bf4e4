"""GroupBook: groups held in memory, changed only by decisions. The offline CLI and tests use it.

It is the in-memory twin of the repository: the same decisions, applied to
dicts instead of tables, each recorded as an event with its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Hashable, Iterable, Mapping

from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.health import check_group
from pricegroups.grouping.merging import plan_merges
from pricegroups.grouping.model import Decision, Eject, GroupState, Merge, ReplaceAnchor, StoreState, Verify
from pricegroups.grouping.pricing import PriceMatrix
from pricegroups.grouping.support import group_supports
from pricegroups.settings import Settings


@dataclass
class RoundSummary:
    checked: int = 0
    verified: int = 0
    ejected: int = 0
    anchors_replaced: int = 0
    merged: int = 0
    stale_anchors: int = 0
    merge_passes: int = 0
    compared: int = 0
    reused: int = 0

    def as_counts(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class GroupBook:
    groups: dict[Hashable, GroupState] = field(default_factory=dict)
    stores: dict[Hashable, StoreState] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def ungrouped(cls, chain_of: Mapping[Hashable, Hashable], created_at: datetime) -> "GroupBook":
        """Every store alone in a group of its own, keyed by the store."""
        book = cls()
        for store, chain in chain_of.items():
            book.groups[store] = GroupState(store, chain, store, (), created_at)
            book.stores[store] = StoreState(store, store)
        return book

    @classmethod
    def from_anchors(cls, chain_of: Mapping[Hashable, Hashable], anchor_of: Mapping[Hashable, Hashable], created_at: datetime) -> "GroupBook":
        """Groups keyed by their anchor store, from {store: anchor}."""
        book = cls()
        members: dict[Hashable, list] = {}
        for store, anchor in anchor_of.items():
            if store != anchor:
                members.setdefault(anchor, []).append(store)
        for anchor in {a for a in anchor_of.values()}:
            book.groups[anchor] = GroupState(anchor, chain_of[anchor], anchor, tuple(sorted(members.get(anchor, []))), created_at)
        for store in anchor_of:
            book.stores[store] = StoreState(store, anchor_of[store])
        return book

    def with_freshness(self, scraped_at: Mapping[Hashable, datetime | None]) -> None:
        for store, state in self.stores.items():
            self.stores[store] = replace(state, scraped_at=scraped_at.get(store))

    def anchor_of(self) -> dict[Hashable, Hashable]:
        return {store: self.groups[state.group].anchor for store, state in self.stores.items()}

    # -- one maintenance round ---------------------------------------------
    def maintenance_round(
        self, matrix: PriceMatrix, as_of: datetime, settings: Settings, exhaustive: bool = False,
        change_rate: float | None = None,
    ) -> RoundSummary:
        """Health checks of every group, then one merge pass (a fixpoint)."""
        comparer = Comparer(matrix, settings, as_of, supports=group_supports(matrix, self.groups, self.stores),
                            change_rate=change_rate)
        summary = RoundSummary()
        for key in sorted(self.groups, key=_key):
            report = check_group(self.groups[key], self.stores, comparer)
            summary.checked += report.checked
            summary.stale_anchors += report.stale_anchor
            self.apply(report.decisions, as_of)
        # One merge pass is a fixpoint (merging.py): afterwards no two candidate anchors match.
        by_chain: dict[Hashable, list[GroupState]] = {}
        for group in self.groups.values():
            by_chain.setdefault(group.chain, []).append(group)
        checks = comparer
        comparer = Comparer(matrix, settings, as_of, known=checks.signed_results(),
                            supports=group_supports(matrix, self.groups, self.stores), change_rate=change_rate)
        merges: list[Merge] = []
        for chain in sorted(by_chain, key=_key):
            merges.extend(plan_merges(by_chain[chain], comparer, settings, exhaustive).merges)
        summary.merge_passes += 1
        self.apply(merges, as_of)
        for decision in (e for e in self.events if e.get("at") == as_of):
            kind = decision["kind"]
            summary.verified += kind == "verified"
            summary.ejected += kind == "member_ejected"
            summary.anchors_replaced += kind == "anchor_replaced"
            summary.merged += kind == "merged"
        summary.compared = len(checks.computed) + len(comparer.computed)
        summary.reused = checks.reused + comparer.reused
        return summary

    # -- applying decisions ------------------------------------------------
    def apply(self, decisions: Iterable[Decision], at: datetime) -> None:
        for decision in decisions:
            if isinstance(decision, Verify):
                self.stores[decision.store] = replace(self.stores[decision.store], verified_at=at)
                self._event(decision, at, decision.comparison.evidence())
            elif isinstance(decision, Eject):
                self._eject(decision, at)
            elif isinstance(decision, ReplaceAnchor):
                group = self.groups[decision.group]
                members = tuple(sorted((set(group.members) - {decision.new_anchor}) | {decision.old_anchor}, key=_key))
                self.groups[decision.group] = replace(group, anchor=decision.new_anchor, members=members)
                self._event(decision, at, {"reason": decision.reason, **decision.evidence})
            elif isinstance(decision, Merge):
                self._merge(decision, at)
            else:
                raise TypeError(f"not a decision: {decision!r}")

    def _eject(self, decision: Eject, at: datetime) -> None:
        group = self.groups[decision.group]
        store = decision.store
        self.groups[decision.group] = replace(group, members=tuple(m for m in group.members if m != store))
        new_key = store if store not in self.groups else f"{store}@{len(self.events)}"
        self.groups[new_key] = GroupState(new_key, group.chain, store, (), at)
        self.stores[store] = replace(self.stores[store], group=new_key)
        self._event(decision, at, decision.comparison.evidence(), other_group=new_key)

    def _merge(self, decision: Merge, at: datetime) -> None:
        absorbed = self.groups.pop(decision.group)
        into = self.groups[decision.into]
        moved = (absorbed.anchor, *absorbed.members)
        self.groups[decision.into] = replace(into, members=tuple(sorted((*into.members, *moved), key=_key)))
        for store in moved:
            self.stores[store] = replace(self.stores[store], group=decision.into)
        self.stores[absorbed.anchor] = replace(self.stores[absorbed.anchor], verified_at=at)
        self._event(decision, at, decision.comparison.evidence(), other_group=decision.group)

    def _event(self, decision: Decision, at: datetime, evidence: dict, other_group: Hashable | None = None) -> None:
        group = self.groups.get(getattr(decision, "into", decision.group)) or self.groups.get(decision.group)
        self.events.append(
            {
                "at": at,
                "kind": decision.kind,
                "chain": group.chain if group else None,
                "group": getattr(decision, "into", decision.group),
                "other_group": other_group,
                "store": getattr(decision, "store", getattr(decision, "new_anchor", None)),
                "other_store": getattr(decision, "anchor", getattr(decision, "old_anchor", None)),
                "evidence": evidence,
            }
        )


def _key(value: Hashable) -> tuple:
    return (type(value).__name__, value)
