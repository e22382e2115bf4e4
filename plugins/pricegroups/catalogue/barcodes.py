"""GTIN barcodes: every accepted form (GTIN-8/12/13/14) compared as GTIN-14.

Pure functions. A barcode is an identity only when its check digit is right and
it is a global number: restricted-circulation numbers (GS1 prefixes 02, 04 and
20-29, EAN-8 starting with 2) are assigned by each retailer for its own
weighed or in-store items, so two chains may use one for different products.
"""

from __future__ import annotations

import re
from typing import NamedTuple

GTIN_LENGTHS = (8, 12, 13, 14)
_SEPARATORS = re.compile(r"[\s\-.]+")


class Gtin(NamedTuple):
    """A normalised barcode (14 digits) or why there is none."""

    gtin14: str | None
    problem: str | None  # None when gtin14 is set or the input was empty


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of the digits before it (weights 3, 1, 3, ... from the right)."""
    digits = [int(d) for d in body]
    total = 3 * sum(digits[-1::-2]) + sum(digits[-2::-2])
    return (10 - total % 10) % 10


def is_restricted(gtin14: str) -> bool:
    """Retailer-internal numbers (variable-measure and in-store codes) that are not global identities."""
    if gtin14.startswith("000000") and gtin14[6] == "2":  # an EAN-8 in restricted range
        return True
    gtin13 = gtin14[1:]
    return gtin14[0] == "0" and (gtin13.startswith(("02", "04")) or gtin13[0] == "2")


def normalize_gtin(raw: str | None) -> Gtin:
    """Digits only, check digit verified, padded to GTIN-14; else the reason it is not usable."""
    if raw is None:
        return Gtin(None, None)
    text = raw if raw.isdigit() else _SEPARATORS.sub("", raw)
    if not text:
        return Gtin(None, None)
    if not text.isascii() or not text.isdigit():
        return Gtin(None, "barcode has characters other than digits")
    if len(text) not in GTIN_LENGTHS:
        return Gtin(None, f"barcode has {len(text)} digits (GTIN has 8, 12, 13 or 14)")
    gtin14 = text.zfill(14)
    if set(gtin14) == {"0"}:
        return Gtin(None, "barcode is all zeros")
    if check_digit(gtin14[:-1]) != int(gtin14[-1]):
        return Gtin(None, "barcode check digit is wrong")
    if is_restricted(gtin14):
        return Gtin(None, "restricted-circulation barcode (retailer-internal, not a global identity)")
    return Gtin(gtin14, None)


def with_check_digit(body: str) -> str:
    """Append the check digit: handy for building valid test barcodes."""
    return body + str(check_digit(body))
