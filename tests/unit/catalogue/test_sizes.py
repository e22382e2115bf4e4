"""Pack sizes as grocery sites write them: a table of real-world strings, then properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from pricegroups.catalogue.sizes import MAX_VALUE, UNITS, Size, parse_size

D = Decimal

REAL_WORLD = [
    ("2L", D(2000), "ml"),
    ("2 Litre", D(2000), "ml"),
    ("2 Litres", D(2000), "ml"),
    ("1.25L", D(1250), "ml"),
    ("1.25 lt", D(1250), "ml"),
    ("3ltr", D(3000), "ml"),
    ("500g", D(500), "g"),
    ("500 g", D(500), "g"),
    ("500gm", D(500), "g"),
    ("500 grams", D(500), "g"),
    ("1.5kg", D(1500), "g"),
    ("1.5 KG", D(1500), "g"),
    ("1,5 kg", D(1500), "g"),
    ("1,000g", D(1000), "g"),
    ("0.5kg", D(500), "g"),
    ("5 kilo", D(5000), "g"),
    ("250mg", D("0.25"), "g"),
    ("6 x 375mL", D(2250), "ml"),
    ("6x375ml", D(2250), "ml"),
    ("6 X 375 ML", D(2250), "ml"),
    ("24 x 375mL cans", D(9000), "ml"),
    ("375mL x 6", D(2250), "ml"),
    ("10 × 20g", D(200), "g"),
    ("4 x 100g", D(400), "g"),
    ("2 x 1L", D(2000), "ml"),
    ("30 x 250ml", D(7500), "ml"),
    ("24 pack 375ml", D(9000), "ml"),
    ("10pk 375mL", D(3750), "ml"),
    ("12 Pack 700g", D(700), "g"),  # eggs: a weight after a count is the whole pack
    ("Multipack 12 Pack 228g", D(228), "g"),
    ("12pk", D(12), "each"),
    ("12 pack", D(12), "each"),
    ("pack of 12", D(12), "each"),
    ("6 pcs", D(6), "each"),
    ("100 bags", D(100), "each"),
    ("200 sheets", D(200), "each"),
    ("9 rolls", D(9), "each"),
    ("30 capsules", D(30), "each"),
    ("each", D(1), "each"),
    ("Each", D(1), "each"),
    ("ea", D(1), "each"),
    ("1 each", D(1), "each"),
    ("per kg", D(1000), "g"),
    ("Per Kg", D(1000), "g"),
    ("/kg", D(1000), "g"),
    ("kg", D(1000), "g"),
    ("per litre", D(1000), "ml"),
    ("750 ml", D(750), "ml"),
    ("750ml", D(750), "ml"),
    ("750 mL", D(750), "ml"),
    ("75cl", D(750), "ml"),
    ("5dl", D(500), "ml"),
    ("16 fl oz", D("473.176"), "ml"),
    ("16oz", D("453.592"), "g"),
    ("1 lb", D("453.592"), "g"),
    ("dozen", D(12), "each"),
    ("half dozen", D(6), "each"),
    ("2 dozen", D(24), "each"),
    ("500g (2 x 250g)", D(500), "g"),
    ("approx. 1kg", D(1000), "g"),
    ("Net wt 400g", D(400), "g"),
    ("Coca-Cola Classic Soft Drink 1.25L", D(1250), "ml"),
    ("Smith's Crinkle Cut Chips Original 170g", D(170), "g"),
    ("Pepsi Max Cola 24 x 375mL", D(9000), "ml"),
    ("Bananas Cavendish per kg", D(1000), "g"),
    ("Free Range Eggs 12 Pack 700g", D(700), "g"),
    ("Lemon each", D(1), "each"),
    ("7up Lemonade 1.25L", D(1250), "ml"),
    ("Milk 2l", D(2000), "ml"),
    ("Äpfel 1 kg", D(1000), "g"),
    ("Лимонад 1,5 л".replace("л", "l"), D(1500), "ml"),
]

NO_SIZE = ["V8 Juice", "Bananas", "", "x", "Tim Tams Original", "1.2-1.5kg", "Mixed 2-3kg bag", "Vitamin B12",
           "Size M", "3 for $10", "🍌"]

ABSURD = ["0g", "0 kg", "0.0001g", "99999kg", "1000000 L", "0 pack", "100000 each", "0.5 each"]


def test_the_table_has_at_least_sixty_real_world_strings():
    assert len(REAL_WORLD) >= 60


@pytest.mark.parametrize(("text", "value", "unit"), REAL_WORLD)
def test_real_world_size_strings(text, value, unit):
    parsed = parse_size(text)
    assert parsed.problem is None
    assert parsed.size == Size(value, unit)


@pytest.mark.parametrize("text", NO_SIZE)
def test_texts_without_a_pack_size_have_none(text):
    assert parse_size(text) == (None, None)


@pytest.mark.parametrize("text", ABSURD)
def test_absurd_sizes_are_reported_not_raised(text):
    parsed = parse_size(text)
    assert parsed.size is None
    assert parsed.problem and "absurd" in parsed.problem


MEASURES = sorted(name for name, (base, _) in UNITS.items() if base in ("g", "ml") and " " not in name)
COUNTS = sorted(name for name, (base, factor) in UNITS.items() if base == "each" and factor == 1 and len(name) > 1)


@given(st.integers(1, 5000), st.sampled_from(MEASURES), st.sampled_from(["", " ", "  "]))
def test_a_number_and_a_unit_is_that_many_units(n, unit, space):
    parsed = parse_size(f"{n}{space}{unit}")
    base, factor = UNITS[unit]
    expected = D(n) * factor
    if expected.quantize(D("0.001")) <= 0 or expected > MAX_VALUE[base]:
        assert parsed.size is None and parsed.problem
    else:
        assert parsed.size is not None
        assert parsed.size.unit == base
        assert parsed.size.value == expected.quantize(D("0.001")).normalize()


@given(st.integers(1, 48), st.integers(1, 2000), st.sampled_from(["g", "ml", "kg", "l"]),
       st.sampled_from([" x ", "x", " X ", " × "]))
def test_multipacks_are_multiplied_out(count, n, unit, times):
    single = parse_size(f"{n}{unit}").size
    multi = parse_size(f"{count}{times}{n}{unit}")
    if single is None or single.value * count > MAX_VALUE[single.unit]:
        assert multi.size is None
    else:
        assert multi.size == Size(single.value * count, single.unit)


@given(st.integers(1, 999), st.sampled_from(MEASURES + COUNTS))
def test_case_and_surrounding_words_do_not_change_a_size(n, unit):
    plain = parse_size(f"{n}{unit}")
    in_a_name = parse_size(f"Brand Product Name {n}{unit.upper()}")
    assert in_a_name.size == plain.size
    assert (in_a_name.problem is None) == (plain.problem is None)


@given(st.text())
def test_any_text_parses_without_raising_to_a_sane_size_or_none(text):
    parsed = parse_size(text)
    if parsed.size is not None:
        assert parsed.problem is None
        assert parsed.size.unit in ("g", "ml", "each")
        assert 0 < parsed.size.value <= MAX_VALUE[parsed.size.unit]


@given(st.decimals(min_value=D("0.001"), max_value=D(99), places=3), st.sampled_from(["kg", "l"]))
def test_decimal_comma_equals_decimal_point_unless_it_groups_thousands(value, unit):
    text = format(value, "f")
    if "." in text and len(text.split(".")[1]) != 3:
        assert parse_size(text.replace(".", ",") + unit) == parse_size(text + unit)
