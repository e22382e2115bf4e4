"""Pack sizes: "2L", "6 x 375mL", "12pk", "per kg" -> a value in g, ml or each.

Pure functions. Multipacks are multiplied out, so a size is always the whole
pack: "6 x 375mL" is 2250 ml. Heuristic for "N pack V": a volume is per item
("24 pack 375ml" cans), a weight is the whole pack ("12 pack 700g" eggs), as
grocery sites write them. An absurd size ("0g", "99999kg") is reported as a
problem, never raised and never stored.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

UNITS: dict[str, tuple[str, Decimal]] = {}


def _units(base: str, factor: str, *names: str) -> None:
    for name in names:
        UNITS[name] = (base, Decimal(factor))


_units("g", "1", "g", "gm", "gms", "gr", "grm", "grms", "gram", "grams", "gramme", "grammes")
_units("g", "1000", "kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes")
_units("g", "0.001", "mg", "milligram", "milligrams")
_units("g", "28.3495", "oz", "ounce", "ounces")
_units("g", "453.592", "lb", "lbs", "pound", "pounds")
_units("ml", "1", "ml", "mls", "millilitre", "millilitres", "milliliter", "milliliters")
_units("ml", "10", "cl", "centilitre", "centilitres")
_units("ml", "100", "dl")
_units("ml", "1000", "l", "lt", "ltr", "ltrs", "litre", "litres", "liter", "liters")
_units("ml", "29.5735", "floz", "fl oz", "fl. oz", "fl.oz")
_units("each", "1", "pk", "pks", "pack", "packs", "pc", "pcs", "piece", "pieces", "ea", "each", "ct",
       "count", "pce", "pces", "units", "unit", "rolls", "roll", "bags", "sachets", "capsules", "caps",
       "pods", "tablets", "tabs", "sheets", "pairs", "pair", "s")
_units("each", "12", "dozen", "doz")

MAX_VALUE = {"g": Decimal(100_000), "ml": Decimal(100_000), "each": Decimal(10_000)}
SIZE_QUANTUM = Decimal("0.001")


class Size(NamedTuple):
    value: Decimal  # in g, ml or each; the whole pack
    unit: str  # 'g', 'ml' or 'each'


class SizeParse(NamedTuple):
    size: Size | None
    problem: str | None  # set when a size was written but is unusable


_UNIT_ALT = "|".join(sorted((re.escape(u).replace(r"\ ", r"\s?") for u in UNITS), key=len, reverse=True))
_NUM = r"(\d+(?:[.,]\d+)?)"
_BEFORE = r"(?<![\w.,])"  # a number starts a token: not "V8", not the "5" of "1.5"
_AFTER = r"(?![^\W\d_])"  # the unit ends a word: "ml" but not "mlk"
_MULTI = re.compile(rf"{_BEFORE}(\d+)\s*[x×*]\s*{_NUM}\s*({_UNIT_ALT}){_AFTER}")
_MULTI_REVERSED = re.compile(rf"{_BEFORE}{_NUM}\s*({_UNIT_ALT}){_AFTER}\s*[x×*]\s*(\d+)(?![\w.])")
_PACK_OF = re.compile(rf"{_BEFORE}(\d+)\s*(?:pk|pack|packs|pce|pcs)\s*(?:of\s*)?{_NUM}\s*({_UNIT_ALT}){_AFTER}")
_RANGE = re.compile(rf"{_BEFORE}{_NUM}\s*(?:-|–|to)\s*{_NUM}\s*({_UNIT_ALT}){_AFTER}")
_SINGLE = re.compile(rf"{_BEFORE}{_NUM}\s*({_UNIT_ALT}){_AFTER}")
_COUNT_OF = re.compile(r"(?:pack|box|bag|case|carton|tray)\s+of\s+(\d+)(?!\w)")
_HALF_DOZEN = re.compile(r"(?<!\w)half\s*(?:a\s*)?dozen(?!\w)")
_PER_UNIT = re.compile(rf"(?:^|(?<!\w)per\s*|/\s*)({_UNIT_ALT}){_AFTER}")
_EACH_WORD = re.compile(r"(?<!\w)(?:each|ea|single|loose)(?!\w)")
_PER_UNIT_WORDS = re.compile(rf"(?:(?<!\w)per\s*|/\s*)(?:{_UNIT_ALT}){_AFTER}|(?<!\w)(?:each|ea)(?!\w)")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _number(text: str) -> Decimal | None:
    """'1.5', '1,5' (decimal comma) and '1,000' (thousands) as numbers."""
    if "," in text:
        whole, _, frac = text.partition(",")
        text = whole + frac if len(frac) == 3 else whole + "." + frac
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _compact(unit: str) -> str:
    return re.sub(r"[\s.]", "", unit)


_BY_COMPACT = {_compact(name): meaning for name, meaning in UNITS.items()}


def _measure(number: str, unit: str, count: int = 1) -> Size | None:
    value = _number(number)
    if value is None:
        return None
    base, factor = _BY_COMPACT[_compact(unit)]
    return Size(value * factor * count, base)


def _checked(size: Size | None, text: str) -> SizeParse:
    if size is None:
        return SizeParse(None, None)
    value = size.value.quantize(SIZE_QUANTUM) if size.unit != "each" else size.value
    if value <= 0:
        return SizeParse(None, f"absurd size {text!r}: zero")
    if value > MAX_VALUE[size.unit]:
        return SizeParse(None, f"absurd size {text!r}: {value} {size.unit} is above {MAX_VALUE[size.unit]}")
    if size.unit == "each" and value != value.to_integral_value():
        return SizeParse(None, f"absurd size {text!r}: a fraction of an item")
    return SizeParse(Size(Decimal(format(value.normalize(), "f")), size.unit), None)


@lru_cache(maxsize=65_536)  # size texts repeat across a run's items
def parse_size(text: str | None) -> SizeParse:
    """The pack size written in `text` (a size text or a product name), or why it is unusable."""
    if not text:
        return SizeParse(None, None)
    folded = _fold(text)
    try:
        return _checked(_find(folded), text)
    except (InvalidOperation, OverflowError, ArithmeticError):
        return SizeParse(None, f"absurd size {text!r}: number out of range")


def _find(text: str) -> Size | None:
    match = _MULTI.search(text)
    if match:
        return _measure(match.group(2), match.group(3), int(match.group(1)))
    match = _MULTI_REVERSED.search(text)
    if match:
        return _measure(match.group(1), match.group(2), int(match.group(3)))
    match = _PACK_OF.search(text)
    if match:
        measure = _measure(match.group(2), match.group(3))
        if measure is not None and measure.unit == "ml":
            return _measure(match.group(2), match.group(3), int(match.group(1)))
        return measure
    if _RANGE.search(text):
        return None  # "1.2-1.5kg": weighed at the till, the pack has no one size
    match = _SINGLE.search(text)
    if match:
        return _measure(match.group(1), match.group(2))
    match = _COUNT_OF.search(text)
    if match:
        return Size(Decimal(match.group(1)), "each")
    if _HALF_DOZEN.search(text):
        return Size(Decimal(6), "each")
    for match in _PER_UNIT.finditer(text):
        if match.group(0) != match.group(1) or text == match.group(1):
            return _measure("1", match.group(1))  # "per kg", "/kg" or a bare "kg": priced per one unit
    if _EACH_WORD.search(text):
        return Size(Decimal(1), "each")
    return None


# every size expression in one pass; at each position the longer forms are tried first
_ANY_SIZE = re.compile("|".join(f"(?:{p.pattern})" for p in (
    _MULTI, _MULTI_REVERSED, _PACK_OF, _RANGE, _SINGLE, _COUNT_OF, _HALF_DOZEN, _PER_UNIT_WORDS)))


def strip_sizes(text: str) -> str:
    """`text` (already folded) without its size expressions, for name keys."""
    return _ANY_SIZE.sub(" ", text)


def unit_basis(unit: str) -> tuple[Decimal, str]:
    """The quantity a unit price is quoted for: per 100 g, per 100 ml, each."""
    if unit == "each":
        return Decimal(1), "each"
    return Decimal(100), f"per 100{unit}"
