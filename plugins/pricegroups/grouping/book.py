"""GroupBook: groups held in memory, changed only by decisions. The offline CLI and tests use it.

It is the in-memory twin of the database and keeps what the database keeps:
groups (anchor, members, created_at) and per store its own price rows
(`prices`: product -> PriceRow with when the price was first observed),
first and last scrape, last verification and `needs_verification`. The same
decisions are applied to dicts instead of tables, with the same rules:

* change rates, lateness and deduplication are storage.py's readings over
  `BookStorage`, the book's side of the storage interface (the database's is
  pgstorage.PostgresStorage): Verify and Merge deduplicate the verified
  store's rows that are the same price as its anchor's, keeping the others
  as overrides;
* the stores a batch of merges leaves in need of verification come from
  merging.needing_verification, as in repository.apply_decisions;
* effective prices come from rules/serving.effective_prices, the rule of the
  effective_prices view.

Each decision is recorded as an event with its evidence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Collection, Hashable, Iterable, Mapping, Sequence

import numpy as np

from pricegroups.grouping.comparer import Comparer
from pricegroups.grouping.health import check_group
from pricegroups.grouping.rules.cadence import DAILY, Cadence, RowsAt
from pricegroups.grouping.rules.lateness import Seen, usually_late
from pricegroups.grouping.rules.serving import Effective, PriceRow, Serving, effective_prices, freshest_rows
from pricegroups.grouping.merging import needing_verification, plan_merges
from pricegroups.grouping.model import Decision, Eject, GroupState, Merge, ReplaceAnchor, StoreState, Verify
from pricegroups.grouping.pricing import PriceMatrix, encode_key, hours, sort_key
from pricegroups.grouping import storage
from pricegroups.grouping.storage import AnchorHistory, AnchorSeen, MemberSeen
from pricegroups.grouping.support import group_supports
from pricegroups.settings import Settings


KEPT_OBSERVATIONS = 4  # per store, for an anchor's lateness (GroupBook.note_observation)


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
    deduplicated: int = 0
    scraped: int = 0  # stores whose scrape was recorded this round (offline: stores with current rows)
    not_newer: int = 0  # scrapes ignored: not newer than the store's last one

    def as_counts(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class GroupBook:
    groups: dict[Hashable, GroupState] = field(default_factory=dict)
    stores: dict[Hashable, StoreState] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[Hashable, dict[Hashable, PriceRow]] = field(default_factory=dict)  # a store's own rows (prices)
    first_scraped_at: dict[Hashable, datetime | None] = field(default_factory=dict)
    needs_verification: set = field(default_factory=set)
    # each store's recent whole observations (what a scrape showed, before any deduplication): an anchor's
    # lateness is read from what its members showed before its change (record_lateness)
    observations: dict[Hashable, dict[datetime, dict[Hashable, Seen]]] = field(default_factory=dict)

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
            book.groups[anchor] = GroupState(anchor, chain_of[anchor], anchor, tuple(sorted(members.get(anchor, []), key=sort_key)), created_at)
        for store in anchor_of:
            book.stores[store] = StoreState(store, anchor_of[store])
        return book

    def add_store(self, store: Hashable, chain: Hashable, created_at: datetime) -> Hashable:
        """A new store, alone in a new group of its own (an ungrouped store); returns the group's key."""
        key = self._fresh_key(store)
        self.groups[key] = GroupState(key, chain, store, (), created_at)
        self.stores[store] = StoreState(store, key)
        return key

    def with_freshness(self, scraped_at: Mapping[Hashable, datetime | None]) -> None:
        for store, state in self.stores.items():
            self.stores[store] = replace(state, scraped_at=scraped_at.get(store))

    def anchor_of(self) -> dict[Hashable, Hashable]:
        return {store: self.groups[state.group].anchor for store, state in self.stores.items()}

    # -- prices --------------------------------------------------------------
    def record_scrape(
        self, store: Hashable, rows: Mapping[Hashable, PriceRow], at: datetime, first_seen: datetime | None = None
    ) -> bool:
        """A successful scrape of `store` at `at` (the upsert's rules, for a whole store at once).

        Its rows become `rows`; a product whose price, was-price and special flag
        are unchanged keeps its row (when it was first observed, its previous
        price); a regular-price change keeps the price it replaced as
        `previous_price`, any other change has none. last_scraped_at becomes
        `at`, first_scraped_at is set once (`first_seen`, default `at`). A scrape
        not newer than the store's last one is ignored (returns False): a re-run
        or a backfill never makes a store's prices older.
        """
        state = self.stores[store]
        if state.scraped_at is not None and at <= state.scraped_at:
            return False
        old = self.rows.get(store, {})
        kept: dict[Hashable, PriceRow] = {}
        for product, row in rows.items():
            before = old.get(product)
            if before is None:
                kept[product] = row  # its previous price, if any, is from the PRICES.csv history
            elif before.same_price(row):
                kept[product] = before
            else:
                regular = not before.on_special and not row.on_special and before.price != row.price
                kept[product] = row._replace(previous_price=before.price if regular else 0)
        self.rows[store] = kept
        self.note_observation(store, at, rows)
        self.stores[store] = replace(state, scraped_at=at)
        if self.first_scraped_at.get(store) is None:
            self.first_scraped_at[store] = first_seen or at
        return True

    def note_observation(self, store: Hashable, at: datetime, rows: Mapping[Hashable, PriceRow]) -> None:
        """Keep what a scrape of `store` at `at` showed (the offline CLI adds PRICES.csv's earlier scrapes).

        Only the store's KEPT_OBSERVATIONS newest are kept: the runs before an
        anchor's change are one or two (`Cadence.before` is one interval, or a day).
        """
        kept = self.observations.setdefault(store, {})
        kept[at] = {p: Seen(r.price, r.on_special, at) for p, r in rows.items()}
        for old in sorted(kept)[:-KEPT_OBSERVATIONS]:
            del kept[old]

    def price_matrix(self, stores: Iterable[Hashable] | None = None) -> PriceMatrix:
        """The stores' own rows (anchors', members' observations and overrides) with when each was first observed."""
        stores = sorted(self.stores if stores is None else set(stores), key=sort_key)
        products = sorted({p for s in stores for p in self.rows.get(s, {})}, key=sort_key)
        col = {p: j for j, p in enumerate(products)}
        keys = np.zeros((len(stores), len(products)), dtype=np.int32)
        was = np.zeros_like(keys)
        observed = np.zeros_like(keys)
        for i, store in enumerate(stores):
            for product, row in self.rows.get(store, {}).items():
                j = col[product]
                keys[i, j] = encode_key(row.price, row.on_special)
                was[i, j] = row.was_price
                observed[i, j] = hours(row.first_observed)
        product_array = np.empty(len(products), dtype=object)
        product_array[:] = products
        return PriceMatrix(tuple(stores), product_array, keys, was, tuple(self.stores[s].scraped_at for s in stores),
                           observed)

    def change_rates(self, cadence: Cadence = DAILY) -> dict[Hashable, float]:
        """Each chain's observed daily rate of price changes (storage.change_rates, as the database measures it).

        Chains without an anchor scraped twice are left out (the daily_change_rate prior applies).
        """
        return storage.change_rates(BookStorage(self, cadence))

    def effective(self, cadence: Cadence = DAILY) -> dict[Hashable, dict[Hashable, Effective]]:
        """{store: {product: Effective}}: what the site would serve for every store (rules/serving.py)."""
        out = {}
        freshest = {}
        for key, group in self.groups.items():
            active = [m for m in (group.anchor, *group.members) if self.stores[m].active]
            freshest[key] = freshest_rows({m: self.rows.get(m, {}) for m in active},
                                          {m: self.stores[m].scraped_at for m in active})
        latest: dict[Hashable, datetime] = {}  # per chain, its latest scrape (the view's clock)
        for store, state in self.stores.items():
            chain = self.groups[state.group].chain
            if state.scraped_at is not None and (chain not in latest or state.scraped_at > latest[chain]):
                latest[chain] = state.scraped_at
        for store, state in self.stores.items():
            anchor, chain = self.groups[state.group].anchor, self.groups[state.group].chain
            serving = Serving(store == anchor, state.scraped_at, state.verified_at, self.first_scraped_at.get(anchor),
                              state.active, usually_late(state.late, state.on_time),
                              cadence.fresh_since(latest.get(chain)))
            out[store] = effective_prices(serving, self.rows.get(store, {}), self.rows.get(anchor, {}), cadence.horizon,
                                          freshest[state.group])
        return out

    def record_lateness(
        self, scraped: Iterable[Hashable], settings: Settings, rates: Mapping[Hashable, float] | None = None,
    ) -> None:
        """Add, for each store among `scraped` (this round's scrapes), its late and on-time changes.

        storage.count_lateness over `BookStorage`, as grouping/lateness.py over
        the database, at the settings' cadence: a member's observation against
        its anchor's fresh changes (rules/lateness.count); an anchor's fresh
        changes against what its members showed in the runs before
        (rules/lateness.count_anchor, from `observations`); no evidence from a
        group whose anchor's list was repriced en masse in its latest scrape
        (rules/compare.repriced_en_masse, with `rates`: the chains' change rates measured before this round's
        scrapes, as the database takes the previous run's; None: measured now).
        Call it after the round's scrapes are recorded and before the round: the
        members' rows are still whole catalogues. Unlike the database, the book
        keeps the sums for good (no `lateness_days` window).
        """
        cadence = Cadence.of_hours(settings.run_interval_hours)
        rates = self.change_rates(cadence) if rates is None else rates
        found = storage.count_lateness(BookStorage(self, cadence, tuple(scraped)), rates, settings)
        for store, (lateness, _) in found.items():
            state = self.stores[store]
            self.stores[store] = replace(state, late=state.late + lateness.late, on_time=state.on_time + lateness.on_time)

    # -- one maintenance round ---------------------------------------------
    def maintenance_round(
        self, matrix: PriceMatrix | None, as_of: datetime, settings: Settings, exhaustive: bool = False,
        change_rate: float | None = None,
    ) -> RoundSummary:
        """Health checks of every group, then one merge pass (a fixpoint).

        With `matrix` None the book's own rows are the pricing, as in the
        database path (service.py): one matrix per chain of its stores' own
        rows with their first observations (the groups' evidence), rebuilt for
        the merge pass (verified members were deduplicated), and each chain's
        measured change rate unless `change_rate` is given. A given `matrix`
        is used as it is for every chain (callers without rows).
        """
        summary = RoundSummary()
        computed: dict = {}
        for groups, chain_matrix, rate in self._scopes(matrix, change_rate, settings):
            comparer = Comparer(chain_matrix, settings, as_of, supports=group_supports(chain_matrix, groups, self.stores),
                                change_rate=rate)
            for key in sorted(groups, key=sort_key):
                report = check_group(self.groups[key], self.stores, comparer)
                summary.checked += report.checked
                summary.stale_anchors += report.stale_anchor
                self.apply(report.decisions, as_of)
            summary.compared += len(comparer.computed)
            summary.reused += comparer.reused
            computed.update(comparer.signed_results())
        # One merge pass is a fixpoint (merging.py): afterwards no two candidate anchors match.
        merges: list[Merge] = []
        for groups, chain_matrix, rate in self._scopes(matrix, change_rate, settings):
            comparer = Comparer(chain_matrix, settings, as_of, known=computed,
                                supports=group_supports(chain_matrix, groups, self.stores), change_rate=rate)
            by_chain: dict[Hashable, list[GroupState]] = {}
            for key in sorted(groups, key=sort_key):
                by_chain.setdefault(groups[key].chain, []).append(groups[key])
            for chain in sorted(by_chain, key=sort_key):
                merges.extend(plan_merges(by_chain[chain], comparer, settings, exhaustive).merges)
            summary.compared += len(comparer.computed)
            summary.reused += comparer.reused
        summary.merge_passes += 1
        self.apply(merges, as_of)
        for decision in (e for e in self.events if e.get("at") == as_of):
            kind = decision["kind"]
            summary.verified += kind == "verified"
            summary.ejected += kind == "member_ejected"
            summary.anchors_replaced += kind == "anchor_replaced"
            summary.merged += kind == "merged"
            summary.deduplicated += decision["evidence"].get("deduplicated", 0) if kind in ("verified", "merged") else 0
        return summary

    def _scopes(self, matrix: PriceMatrix | None, change_rate: float | None, settings: Settings):
        """(groups, matrix, change rate) to decide together: per chain from the book's rows, or all on `matrix`."""
        if matrix is not None:
            yield dict(self.groups), matrix, change_rate
            return
        rates = self.change_rates(Cadence.of_hours(settings.run_interval_hours)) if change_rate is None else {}
        by_chain: dict[Hashable, dict[Hashable, GroupState]] = {}
        for key, group in self.groups.items():
            by_chain.setdefault(group.chain, {})[key] = group
        for chain in sorted(by_chain, key=sort_key):
            groups = by_chain[chain]
            stores = [s for g in groups.values() for s in (g.anchor, *g.members)]
            yield groups, self.price_matrix(stores), rates.get(chain, change_rate)

    # -- applying decisions ------------------------------------------------
    def apply(self, decisions: Iterable[Decision], at: datetime) -> None:
        """Apply decisions in order; a batch's merges are applied together (their needs-verification rule)."""
        decisions = list(decisions)
        merges = [d for d in decisions if isinstance(d, Merge)]
        before = dict(self.groups) if merges else self.groups  # the states the merges were decided on
        for decision in decisions:
            if isinstance(decision, Verify):
                self.stores[decision.store] = replace(self.stores[decision.store], verified_at=at)
                self.needs_verification.discard(decision.store)
                dropped = self._deduplicate(decision.store, decision.anchor)
                self._event(decision, at, {**decision.comparison.evidence(), "deduplicated": dropped})
            elif isinstance(decision, Eject):
                self._eject(decision, at)
            elif isinstance(decision, ReplaceAnchor):
                group = self.groups[decision.group]
                members = tuple(sorted((set(group.members) - {decision.new_anchor}) | {decision.old_anchor}, key=sort_key))
                self.groups[decision.group] = replace(group, anchor=decision.new_anchor, members=members)
                self._event(decision, at, {"reason": decision.reason, **decision.evidence})
            elif isinstance(decision, Merge):
                self._merge(decision, at, before)
            else:
                raise TypeError(f"not a decision: {decision!r}")
        if merges:
            self.needs_verification |= needing_verification(merges, before)

    def _deduplicate(self, store: Hashable, anchor: Hashable) -> int:
        """Drop the store's rows equal to its anchor's; the others stay as its overrides."""
        return BookStorage(self).deduplicate([(store, anchor)]).get(store, 0)

    def _eject(self, decision: Eject, at: datetime) -> None:
        group = self.groups[decision.group]
        store = decision.store
        self.groups[decision.group] = replace(group, members=tuple(m for m in group.members if m != store))
        new_key = self._fresh_key(store)
        self.groups[new_key] = GroupState(new_key, group.chain, store, (), at)
        self.stores[store] = replace(self.stores[store], group=new_key)
        self.needs_verification.discard(store)
        self._event(decision, at, decision.comparison.evidence(), other_group=new_key)

    def _merge(self, decision: Merge, at: datetime, before: Mapping[Hashable, GroupState]) -> None:
        absorbed = self.groups.pop(decision.group)
        into = self.groups[decision.into]
        moved = (absorbed.anchor, *absorbed.members)
        self.groups[decision.into] = replace(into, members=tuple(sorted((*into.members, *moved), key=sort_key)))
        for store in moved:
            self.stores[store] = replace(self.stores[store], group=decision.into)
        self.stores[absorbed.anchor] = replace(self.stores[absorbed.anchor], verified_at=at)
        self.needs_verification.discard(absorbed.anchor)
        dropped = self._deduplicate(decision.store, decision.anchor)
        evidence = {**decision.comparison.evidence(), "deduplicated": dropped,
                    "sizes": [before[decision.group].size, before[decision.into].size]}
        self._event(decision, at, evidence, other_group=decision.group)

    def _fresh_key(self, store: Hashable) -> Hashable:
        """A new group's key: the store itself when free; else (chain, code.N) for (chain, code) stores, store@N otherwise."""
        if store not in self.groups:
            return store
        n = 2
        while True:
            key = (*store[:-1], f"{store[-1]}.{n}") if isinstance(store, tuple) and store else f"{store}@{n}"
            if key not in self.groups:
                return key
            n += 1

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


@dataclass
class BookStorage:
    """The storage interface (storage.py) over a GroupBook: its rows, and `scraped`, this round's scrapes.

    It gathers what the rules read, as pgstorage.PostgresStorage does from the
    database; the book keeps whole histograms (a few thousand rows per anchor in memory).
    """

    book: GroupBook
    cadence: Cadence = DAILY
    scraped: tuple = ()

    def anchor_histories(self) -> list[AnchorHistory]:
        out = []
        for key, group in self.book.groups.items():
            anchor = group.anchor
            bars = Counter((r.first_observed, bool(r.previous_price)) for r in self.book.rows.get(anchor, {}).values())
            out.append(AnchorHistory(key, group.chain, self.book.first_scraped_at.get(anchor),
                                     self.book.stores[anchor].scraped_at,
                                     tuple(RowsAt(at, previous, n) for (at, previous), n in bars.items())))
        return out

    def observations(self, skip_groups: Collection[Hashable]) -> tuple[list[MemberSeen], list[AnchorSeen]]:
        """This round's scraped members (active) and anchors, outside `skip_groups`; an anchor with what its
        members showed in the runs before its scrape (`note_observation` keeps them)."""
        members, anchors = [], []
        for store in self.scraped:
            state = self.book.stores[store]
            group = self.book.groups[state.group]
            if state.scraped_at is None or state.group in skip_groups:
                continue
            if store == group.anchor:
                anchors.append(AnchorSeen(store, state.scraped_at, state.scraped_at, self._earlier(group),
                                          self.book.rows.get(store, {})))
            elif state.active:
                rows = self.book.rows.get(store, {})
                seen = {p: Seen(r.price, r.on_special, state.scraped_at) for p, r in rows.items()}
                members.append(MemberSeen(store, state.scraped_at, seen, self.book.rows.get(group.anchor, {})))
        return members, anchors

    def _earlier(self, group: GroupState) -> dict[Hashable, list[Seen]]:
        """What the group's active members showed, per product the anchor carries, in the runs before its
        latest scrape (`Cadence.runs_before`)."""
        anchor_rows = self.book.rows.get(group.anchor, {})
        start, end = self.cadence.runs_before(self.book.stores[group.anchor].scraped_at)
        out: dict[Hashable, list[Seen]] = {}
        for member in group.members:
            if not self.book.stores[member].active:
                continue
            for at, seen in self.book.observations.get(member, {}).items():
                if start <= at < end:
                    for product, s in seen.items():
                        if product in anchor_rows:
                            out.setdefault(product, []).append(s)
        return out

    def deduplicate(self, pairs: Sequence[tuple[Hashable, Hashable]]) -> dict[Hashable, int]:
        """Drop each member's rows that are the same price as its anchor's (PriceRow.same_price)."""
        dropped = {}
        for store, anchor in pairs:
            rows = self.book.rows.get(store)
            if not rows:
                continue
            anchor_rows = self.book.rows.get(anchor, {})
            kept = {p: r for p, r in rows.items() if not (p in anchor_rows and anchor_rows[p].same_price(r))}
            self.book.rows[store] = kept
            dropped[store] = len(rows) - len(kept)
        return dropped
