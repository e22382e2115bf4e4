"""Support: which other stores of a group were last seen charging a given price (DESIGN.md §5).

A disagreement between two stores means something different depending on who
else shares it. When the stores of one group were seen charging store A's
price for a product and the stores of another group (or other members of the
same group) were seen charging store B's, the difference is *shared*: two
price lists. When nobody else charges B's price, it is B's own deviation
(idiosyncratic, or a scrape caught mid-change) and says nothing about lists.

A group's evidence, product by product:

* a member's own rows (observed since its last verification, or the overrides
  its verification kept) count for the member's own price;
* a member without an own row for a product was seen charging the anchor's
  price there only if it was verified after the anchor's price was first
  observed (PriceMatrix.observed); a price the anchor shows only since then
  (a change, or the anchor's own mid-change scrape) has no support from it.

The anchor counts for its own prices, but no store is evidence for itself:
the two stores being compared are left out. Pure: plain data in, counts out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Mapping

import numpy as np

from pricegroups.grouping.pricing import PriceMatrix, _mix, hours

if TYPE_CHECKING:
    from pricegroups.grouping.model import GroupState, StoreState

_KEY_BITS = np.int64(32)


@dataclass(frozen=True, eq=False)
class GroupSupport:
    """One group's evidence per (product column, price key), excluding its anchor."""

    group: Hashable
    anchor_row: int
    inherit: np.ndarray  # int32 per column: members that saw the anchor's current price there
    codes: np.ndarray  # sorted int64 (column << 32 | key) of members' own rows
    counts: np.ndarray  # int32, members holding each code
    member_rows: frozenset  # matrix rows of members with own rows (each counts itself once)
    signature: int  # changes whenever any of this evidence may have changed

    def support(self, matrix: PriceMatrix, cols: np.ndarray, keys: np.ndarray, exclude: tuple[int, ...] = ()) -> np.ndarray:
        """How many of the group's stores (the anchor included), other than the rows `exclude`, hold `keys` at `cols`."""
        at_anchor = keys == matrix.keys[self.anchor_row, cols]
        out = np.where(at_anchor, self.inherit[cols] + 1, 0).astype(np.int64)
        if len(self.codes):
            wanted = (cols.astype(np.int64) << _KEY_BITS) | keys.astype(np.int64)
            pos = np.minimum(np.searchsorted(self.codes, wanted), len(self.codes) - 1)
            out += np.where(self.codes[pos] == wanted, self.counts[pos], 0)
        for row in exclude:  # the compared stores are not evidence for themselves or each other
            if row == self.anchor_row or row in self.member_rows:
                out -= matrix.keys[row, cols] == keys
        return np.maximum(out, 0)


def group_supports(
    matrix: PriceMatrix, groups: Mapping[Hashable, "GroupState"], stores: Mapping[Hashable, "StoreState"]
) -> dict[Hashable, GroupSupport]:
    """{store: its group's support} for every store of a group with members whose anchor is in the matrix."""
    out: dict[Hashable, GroupSupport] = {}
    signatures = None
    for group in groups.values():
        if not group.members or group.anchor not in matrix.row_of:
            continue
        if signatures is None:
            signatures = matrix.signatures().view(np.int64)
        support = _build(matrix, group, stores, signatures)
        out[group.anchor] = support
        for member in group.members:
            out[member] = support
    return out


def _build(matrix: PriceMatrix, group: "GroupState", stores: Mapping[Hashable, "StoreState"], signatures) -> GroupSupport:
    ra = matrix.row_of[group.anchor]
    width = matrix.keys.shape[1]
    observed = matrix.observed[ra] if matrix.observed is not None else np.zeros(width, dtype=np.int32)
    carried = matrix.keys[ra] != 0
    verified = sorted(hours(stores[m].verified_at) for m in group.members
                      if m in stores and stores[m].verified_at is not None)
    seen = np.asarray(verified, dtype=np.int64)
    # members verified at or after each anchor price was first observed
    inherit = (len(seen) - np.searchsorted(seen, observed.astype(np.int64), side="left")).astype(np.int32)
    rows, code_parts = [], []
    digest = _stable((group.group, group.anchor))
    for member in group.members:
        state = stores.get(member)
        v = hours(state.verified_at) if state is not None and state.verified_at is not None else None
        digest ^= _mix(_stable((member, v)))
        row = matrix.row_of.get(member)
        if row is None:
            continue
        cols = np.flatnonzero(matrix.keys[row])
        if not len(cols):
            continue
        rows.append(row)
        digest ^= _mix(np.uint64(int(signatures[row]) & 0xFFFFFFFFFFFFFFFF))
        code_parts.append((cols.astype(np.int64) << _KEY_BITS) | matrix.keys[row, cols].astype(np.int64))
        if v is not None:  # a member with its own row there did not inherit the anchor's price
            inherit[cols[observed[cols] <= v]] -= 1
    inherit = np.where(carried, np.maximum(inherit, 0), 0).astype(np.int32)
    if code_parts:
        codes, counts = np.unique(np.concatenate(code_parts), return_counts=True)
    else:
        codes, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return GroupSupport(group.group, ra, inherit, codes, counts.astype(np.int32), frozenset(rows),
                        int(np.array(digest, dtype=np.uint64).view(np.int64)))


def _stable(value: object) -> np.uint64:
    """A hash that is the same in every process (Python's str hash is salted per process)."""
    return np.uint64(int.from_bytes(hashlib.blake2b(repr(value).encode(), digest_size=8).digest(), "little"))
