"""Price arithmetic of the demo site: shelf rounding, unit prices, money text, malformed cuts."""

from __future__ import annotations

from decimal import Decimal

from pricegroups.demo.layouts.common import cut_off
from pricegroups.demo.model import Chain, Listing
from pricegroups.demo.pricing import PriceEngine, money, shelf_price


def listing(size_value: str, size_unit: str, show: bool = True) -> Listing:
    return Listing("1", "P1", "B", "N", "s", Decimal(size_value), size_unit, "C", None, Decimal("1.00"), show)


def chain(basis: int) -> Chain:
    return Chain("c", "C", "grid", 60, basis, (), (), ())


def test_shelf_prices_end_in_0_or_9_cents_and_have_two_decimals():
    for value in (0.1, 1.234, 3.5, 17.99, 250.0):
        for draw in (0.2, 0.8):
            price = shelf_price(value, draw)
            assert price.as_tuple().exponent == -2
            assert str(price)[-1] in "09" and price >= Decimal("0.59")


def test_unit_price_per_100_or_per_kilo_or_each():
    assert PriceEngine.unit_price(chain(100), listing("2250", "ml"), Decimal("9.00")) == (Decimal("0.40"), "100mL")
    assert PriceEngine.unit_price(chain(1000), listing("500", "g"), Decimal("4.50")) == (Decimal("9.00"), "1kg")
    assert PriceEngine.unit_price(chain(1000), listing("2000", "ml"), Decimal("3.00")) == (Decimal("1.50"), "1L")
    assert PriceEngine.unit_price(chain(100), listing("12", "each"), Decimal("6.00")) == (Decimal("0.50"), "each")
    assert PriceEngine.unit_price(chain(100), listing("12", "each", show=False), Decimal("6.00")) == (None, None)
    assert PriceEngine.unit_price(chain(100), listing("10000", "ml"), Decimal("0.60"))[0] == Decimal("0.01")


def test_money_is_written_with_a_dollar_sign_and_two_decimals():
    assert money(Decimal("3.5")) == "$3.50"
    assert money(Decimal("12.00")) == "$12.00"


def test_a_cut_off_page_ends_inside_a_tag():
    html = "<html><body>" + "".join(f'<div class="x" data-n="{i}">item {i}</div>' for i in range(50)) + "</body></html>"
    cut = cut_off(html)
    assert len(cut) < len(html) * 0.6 and not cut.endswith(">")
