"""Field parsers a site profile names, and the validated item they produce.

A parser turns one raw value (the text an XPath or a JSON-LD path found) into
one or more item attributes; it raises ValueError with a message a user can
read, and that message becomes the item's drop reason. Validation then checks
the item as a whole (required fields, price sanity) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping, NamedTuple

from pricegroups.errors import MoneyError
from pricegroups.scrape import money


class ScrapedItem(NamedTuple):
    """One product as a store's catalogue lists it, typed and validated.

    A NamedTuple rather than a dataclass: tens of thousands are built per store
    and go straight into COPY as rows.
    """

    sku: str
    name: str
    price: Decimal
    brand: str | None = None
    size_text: str | None = None
    barcode: str | None = None
    category: str | None = None
    was_price: Decimal | None = None
    unit_price: Decimal | None = None
    unit_measure: str | None = None
    on_special: bool = False
    promo_text: str | None = None
    multibuy_qty: int | None = None
    multibuy_price: Decimal | None = None

    def as_row(self) -> tuple:
        return tuple(self)


# The attributes of a scraped item, in scraped_items COPY column order.
ITEM_FIELDS = ScrapedItem._fields
# Fields a profile may extract (the item fields plus helpers that are folded in by validation).
EXTRACTABLE = frozenset(ITEM_FIELDS) | {"saving"}
DEFAULT_PRICE_CEILING = Decimal("10000.00")


@dataclass(frozen=True, slots=True)
class Dropped:
    """An item (or, with kept=True, one field of a kept item) that failed validation."""

    sku: str | None
    reason: str
    raw: Mapping[str, Any]
    kept: bool = False


def clean_text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _text(raw: Any, target: str) -> dict[str, Any]:
    return {target: clean_text(raw)}


def _money(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    return {target: None if text is None else money.parse_amount(text)}


def _price(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    if text is None:
        return {target: None}
    parsed = money.parse_price_text(text)
    out: dict[str, Any] = {target: parsed.price}
    if parsed.multibuy is not None:
        out["multibuy_qty"] = parsed.multibuy.qty
        out["multibuy_price"] = parsed.multibuy.total
    return out


def _was_price(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    return {target: None if text is None else money.parse_prefixed(text, "was")}


def _saving(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    return {target: None if text is None else money.parse_prefixed(text, "save")}


def _unit_price(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    if text is None:
        return {}
    unit = money.parse_unit_price(text)
    return {"unit_price": unit.amount, "unit_measure": unit.measure}


def _unit_amount(raw: Any, target: str) -> dict[str, Any]:
    """A unit price given as a bare amount (its measure is another field), exact to 4 places."""
    text = clean_text(raw)
    return {target: None if text is None else money.parse_amount(text, money.UNIT_PRICE_PLACES)}


def _measure(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    return {target: None if text is None else money.normalise_measure(text)}


def _promo(raw: Any, target: str) -> dict[str, Any]:
    """Promo text, kept verbatim; a multibuy offer in it also fills multibuy_qty / multibuy_price."""
    text = clean_text(raw)
    out: dict[str, Any] = {target: text}
    if text is not None:
        offer = money.parse_multibuy(text)
        if offer is not None:
            out["multibuy_qty"] = offer.qty
            out["multibuy_price"] = offer.total
    return out


def minor_units(scale: int = 2) -> Callable[[Any, str], dict[str, Any]]:
    """A parser of whole minor units (cents: scale 2) as APIs send money: 350 -> 3.50.

    Exact or refused: a fraction of a minor unit, or an amount with more
    decimals than the target holds (cents; a unit price 4 places), is an error.
    """
    def parse(raw: Any, target: str) -> dict[str, Any]:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return {target: None}
        if isinstance(raw, bool):
            raise MoneyError(f"{target}: not a whole number of minor units: {raw!r}")
        try:
            units = Decimal(raw.strip() if isinstance(raw, str) else raw)
        except (InvalidOperation, TypeError, ValueError):
            raise MoneyError(f"{target}: not a whole number of minor units: {raw!r}") from None
        if not units.is_finite() or units != units.to_integral_value():
            raise MoneyError(f"{target}: not a whole number of minor units: {raw!r}")
        places = money.UNIT_PRICE_PLACES if target == "unit_price" else money.CENT
        amount = units.scaleb(-scale)
        try:
            exact = amount.quantize(places)
        except InvalidOperation:  # more digits than a Decimal context holds: no price is that big
            raise MoneyError(f"{target}: not a whole number of minor units: {raw!r}") from None
        if amount != exact:
            raise MoneyError(f"{target}: {raw!r} minor units at scale {scale} has more decimals than {places}")
        return {target: exact}

    return parse


_FALSE = {"", "0", "false", "no", "off", "none", "n"}


def _bool(raw: Any, target: str) -> dict[str, Any]:
    """True for an XPath boolean true, a non-empty node set, or a truthy word."""
    if isinstance(raw, bool):
        return {target: raw}
    if raw is None:
        return {target: False}
    return {target: str(raw).strip().lower() not in _FALSE}


def _int(raw: Any, target: str) -> dict[str, Any]:
    text = clean_text(raw)
    if text is None:
        return {target: None}
    try:
        return {target: int(Decimal(text))}
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{target}: not an integer: {text!r}") from exc


def _barcode(raw: Any, target: str) -> dict[str, Any]:
    """GTIN-8/12/13/14 with a valid check digit, normalised to 14 digits (products.barcode)."""
    text = clean_text(raw)
    if text is None:
        return {target: None}
    return {target: normalise_gtin(text)}


def normalise_gtin(text: str) -> str:
    digits = text.replace(" ", "").replace("-", "")
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        raise ValueError(f"barcode {text!r} is not a GTIN-8/12/13/14")
    gtin = digits.zfill(14)
    total = 3 * sum(map(int, gtin[0:13:2])) + sum(map(int, gtin[1:13:2]))
    if (10 - total % 10) % 10 != int(gtin[13]):
        raise ValueError(f"barcode {text!r} has a wrong check digit")
    return gtin


PARSERS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "text": _text,
    "money": _money,
    "cents": minor_units(2),
    "price": _price,
    "was_price": _was_price,
    "saving": _saving,
    "unit_price": _unit_price,
    "unit_amount": _unit_amount,
    "measure": _measure,
    "promo": _promo,
    "bool": _bool,
    "int": _int,
    "barcode": _barcode,
}

# The parser a field gets when its spec names none.
DEFAULT_PARSER = {
    "price": "price", "was_price": "was_price", "saving": "saving", "unit_price": "unit_price",
    "on_special": "bool", "promo_text": "promo", "barcode": "barcode", "multibuy_qty": "int",
    "multibuy_price": "money",
}


def build_item(values: dict[str, Any], ceiling: Decimal = DEFAULT_PRICE_CEILING) -> ScrapedItem:
    """Fold parsed field values into a validated ScrapedItem; ValueError says why not."""
    sku = values.get("sku")
    if not sku:
        raise ValueError("missing sku")
    if not values.get("name"):
        raise ValueError("missing name")
    price = values.get("price")
    if price is None:
        raise ValueError("missing price")
    if not price > 0:
        raise ValueError(f"price {price} is not positive")
    if price > ceiling:
        raise ValueError(f"price {price} above the ceiling {ceiling}")
    was = values.get("was_price")
    saving = values.pop("saving", None)
    if was is None and saving is not None:
        was = price + saving
    if was is not None and not was > price:
        raise ValueError(f"was-price {was} is not above price {price}")
    unit_price = values.get("unit_price")
    if (unit_price is None) != (values.get("unit_measure") is None):
        raise ValueError("unit price needs both an amount and a measure")
    if unit_price is not None and not unit_price > 0:
        raise ValueError(f"unit price {unit_price} is not positive")
    qty, total = values.get("multibuy_qty"), values.get("multibuy_price")
    if (qty is None) != (total is None):
        raise ValueError("multibuy needs both a quantity and a price")
    if qty is not None and (qty < 2 or not total > 0):
        raise ValueError(f"multibuy {qty} for {total} is not an offer")
    on_special = values.get("on_special")
    if on_special is None:
        on_special = was is not None or qty is not None
    get = values.get
    return ScrapedItem(
        str(sku), values["name"], price, get("brand"), get("size_text"), get("barcode"), get("category"),
        was, unit_price, get("unit_measure"), bool(on_special), get("promo_text"), qty, total,
    )
