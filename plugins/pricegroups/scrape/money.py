"""Prices as supermarket sites write them, parsed to exact Decimals.

Floats never appear: a price is cents, and "$3.50" must compare equal to the
cent with the same price scraped from another store. Every parser raises
`MoneyError` (a ValueError) on text it cannot read, so the caller can drop the
item with that message as the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from pricegroups.errors import MoneyError

CENT = Decimal("0.01")
UNIT_PRICE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Multibuy:
    """"2 for $5.00": qty items for total; `each` is the per-item price rounded to the cent."""

    qty: int
    total: Decimal

    @property
    def each(self) -> Decimal:
        return (self.total / self.qty).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class UnitPrice:
    """"$1.20 / 100g": amount per measure (measure normalised, e.g. '100g', '1kg', '1l', 'each')."""

    amount: Decimal
    measure: str


# An amount: optional currency sign/code, digits with optional thousands
# separators, optional decimals; or a cents amount ("99c", "99¢").
_CURRENCY = r"(?:[$€£]|A\$|NZ\$|US\$|AUD|NZD|USD|EUR|GBP)"
_NUMBER = r"(?:\d{1,3}(?:[,\u00a0 ]\d{3})+|\d+)(?:[.,]\d+)?|[.,]\d+"
_AMOUNT_RE = re.compile(
    rf"^\s*(?:{_CURRENCY}\s*)?(?P<num>{_NUMBER})\s*(?:{_CURRENCY})?\s*$", re.IGNORECASE
)
_PLAIN_RE = re.compile(r"^\$?\d{1,9}\.\d{2}$")
_PLAIN_UNIT_RE = re.compile(
    r"^\$(?P<amount>\d{1,9}\.\d{2}) ?(?:(?:/|per) ?(?P<measure>\d*[A-Za-z]+)|(?P<each>each))$"
)
_CENTS_RE = re.compile(r"^\s*(?P<num>\d{1,3})\s*(?:c|¢|cents?)\s*$", re.IGNORECASE)
_AMOUNT_INSIDE = rf"(?:{_CURRENCY}\s*)?(?:{_NUMBER})(?:\s*{_CURRENCY})?|\d{{1,3}}\s*(?:c|¢)"

_MULTIBUY_RE = re.compile(
    rf"^\s*(?:any\s+)?(?P<qty>\d{{1,3}})\s*(?:for|/|x)\s*(?P<amount>{_AMOUNT_INSIDE})\s*$", re.IGNORECASE
)
_PREFIXED_RE = re.compile(
    rf"^\s*(?P<word>was|save|now|only|special|price)\s*:?\s*(?P<amount>{_AMOUNT_INSIDE})\s*$", re.IGNORECASE
)
_UNIT_RE = re.compile(
    rf"^\s*(?P<amount>{_AMOUNT_INSIDE})\s*"
    rf"(?:(?:/|per)\s*(?P<measure>[0-9.]*\s*[a-z]+)|(?P<each>each|ea))\s*\.?\s*$",
    re.IGNORECASE,
)

_MEASURE_UNITS = {
    "g": "g", "gm": "g", "gram": "g", "grams": "g",
    "kg": "kg", "kilo": "kg", "kilogram": "kg", "kilograms": "kg",
    "ml": "ml", "millilitre": "ml", "milliliter": "ml", "millilitres": "ml",
    "l": "l", "lt": "l", "litre": "l", "liter": "l", "litres": "l", "liters": "l",
    "ea": "each", "each": "each", "unit": "each", "item": "each", "pack": "each",
}


def _number(text: str) -> Decimal:
    """Digits with ',' / ' ' thousands separators and '.' decimals; a lone ',' + 2 digits is decimal."""
    text = text.replace("\u00a0", " ")
    if "," in text and "." not in text and re.fullmatch(r"\d*,\d{1,2}", text):
        text = text.replace(",", ".")  # "3,50" (decimal comma)
    elif "," in text and "." in text and text.rfind(",") > text.rfind("."):
        raise MoneyError(f"ambiguous separators in {text!r}")
    cleaned = text.replace(",", "").replace(" ", "")
    try:
        return Decimal(cleaned)
    except InvalidOperation as exc:
        raise MoneyError(f"not a number: {text!r}") from exc


def parse_amount(text: str, places: Decimal = CENT) -> Decimal:
    """"$3.50", "3.50", "$1,234.00", "99c" -> Decimal, exact to `places` (more digits is an error)."""
    if text is None:
        raise MoneyError("no amount")
    text = str(text).strip()
    if _PLAIN_RE.match(text):  # fast path: how nearly every shelf price is written
        value = Decimal(text.lstrip("$"))
        if value == value.quantize(places):
            return value.quantize(places)
    match = _CENTS_RE.match(text)
    if match:
        value = Decimal(match["num"]) / 100
    else:
        match = _AMOUNT_RE.match(text)
        if not match:
            raise MoneyError(f"not an amount of money: {text!r}")
        value = _number(match["num"])
    if value != value.quantize(places, rounding=ROUND_HALF_UP):
        raise MoneyError(f"{text!r} has more decimals than {places}")
    return value.quantize(places)


def parse_multibuy(text: str) -> Multibuy | None:
    """"2 for $5.00", "Any 3 for $10" -> Multibuy; None when the text is not a multibuy offer."""
    match = _MULTIBUY_RE.match(text or "")
    if not match:
        return None
    qty = int(match["qty"])
    if qty < 2:
        raise MoneyError(f"multibuy quantity below 2 in {text!r}")
    return Multibuy(qty, parse_amount(match["amount"]))


def parse_prefixed(text: str, word: str) -> Decimal:
    """"was $4.20" / "Save $0.70" -> the amount; a bare amount is accepted too."""
    match = _PREFIXED_RE.match(text or "")
    if match:
        if match["word"].lower() != word:
            raise MoneyError(f"expected {word!r} amount, got {text!r}")
        return parse_amount(match["amount"])
    return parse_amount(text)


@lru_cache(maxsize=512)  # a site writes a handful of measures, over and over
def normalise_measure(text: str) -> str:
    """'100 g' -> '100g', 'kg' -> '1kg', 'Litre' -> '1l', 'ea' -> 'each'."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]*)\s*([a-zA-Z]+)\s*", text or "")
    if not match:
        raise MoneyError(f"unknown measure {text!r}")
    unit = _MEASURE_UNITS.get(match[2].lower())
    if unit is None:
        raise MoneyError(f"unknown measure unit {match[2]!r}")
    if unit == "each":
        return "each"
    qty = match[1] or "1"
    try:
        number = Decimal(qty)
    except InvalidOperation as exc:
        raise MoneyError(f"bad measure quantity {qty!r}") from exc
    if number <= 0:
        raise MoneyError(f"measure quantity must be positive in {text!r}")
    return f"{number.normalize():f}{unit}"


def parse_unit_price(text: str) -> UnitPrice:
    """"$1.20 / 100g", "$12 per kg", "$0.50/ea" -> UnitPrice."""
    match = _PLAIN_UNIT_RE.match(text or "")  # fast path: "$1.20 / 100g", "$1.75 per 1L", "$0.50 each"
    if match:
        measure = "each" if match["each"] else normalise_measure(match["measure"])
        return UnitPrice(Decimal(match["amount"]), measure)
    match = _UNIT_RE.match(text or "")
    if not match:
        raise MoneyError(f"not a unit price: {text!r}")
    amount = parse_amount(match["amount"], UNIT_PRICE_PLACES)
    return UnitPrice(amount, "each" if match["each"] else normalise_measure(match["measure"]))


@dataclass(frozen=True)
class PriceText:
    """What one price text says: a plain price, or a multibuy whose `price` is the per-item price."""

    price: Decimal
    multibuy: Multibuy | None = None


def parse_price_text(text: str) -> PriceText:
    """A shelf price: "$3.50", "now $3.50", or "2 for $5.00" (price = $2.50 each)."""
    if _PLAIN_RE.match(text or ""):
        return PriceText(parse_amount(text))
    multibuy = parse_multibuy(text)
    if multibuy is not None:
        return PriceText(multibuy.each, multibuy)
    match = _PREFIXED_RE.match(text or "")
    if match and match["word"].lower() in ("now", "only", "special", "price"):
        return PriceText(parse_amount(match["amount"]))
    return PriceText(parse_amount(text))
