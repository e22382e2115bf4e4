"""How work is cut into mapped task instances: one pure rule for scrape, health-check and comparison batches.

Each mapped task instance costs Airflow seconds of scheduling, so small work
is not spread thin (`min_per_batch`); big work is capped (`cap`) so the map
never nears Airflow's max_map_length, whatever the number of stores.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, TypeVar

T = TypeVar("T")


def split(items: Sequence[T], cap: int, min_per_batch: int = 1) -> list[list[T]]:
    """`items` cut into consecutive batches: as many as hold `min_per_batch` items each, at most `cap`, at
    least one (no batch for no items); sizes differ by one at most.

    Every item is in exactly one batch, in its order. So that, for distinct items,
    each batch's first item is distinct and names it (the run log's part keys).
    """
    if not items:
        return []
    count = max(1, min(cap, len(items) // max(1, min_per_batch)))
    n = len(items)
    return [list(items[i * n // count:(i + 1) * n // count]) for i in range(count)]


def chain_batches(store_ids: Mapping[str, Sequence[int]], cap: int, min_per_batch: int = 1) -> list[dict[str, Any]]:
    """Scrape batches (`{"chain", "store_ids"}`), one chain's stores each: every chain with stores gets a
    batch (one requests.Session per chain) and the rest of `cap` is shared in proportion to stores."""
    chains = {chain: list(ids) for chain, ids in store_ids.items() if ids}
    if not chains:
        return []
    spare = max(cap, len(chains)) - len(chains)
    total = sum(len(ids) for ids in chains.values())
    return [{"chain": chain, "store_ids": part}
            for chain, ids in chains.items()
            for part in split(ids, 1 + spare * len(ids) // total, min_per_batch)]
