"""Deterministic pseudo-randomness: a number in [0, 1) from a seed and a key.

Prices must be a pure function of (scenario, day), so nothing here keeps state
that changes: the same seed and parts give the same number, in every process
(unlike the built-in `hash`, which is salted per process).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

_SCALE = float(1 << 64)


@lru_cache(maxsize=64)
def _seeded(seed: int) -> "hashlib._Hash":
    return hashlib.blake2b(f"{seed}|".encode(), digest_size=8)


def unit(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) determined by `seed` and `parts`."""
    h = _seeded(seed).copy()
    h.update("|".join(map(str, parts)).encode())
    return int.from_bytes(h.digest(), "little") / _SCALE
