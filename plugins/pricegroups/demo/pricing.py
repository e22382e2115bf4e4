"""Prices as a pure function of (scenario, zone, listing, day), memoised.

A listing's regular price has *versions*: it changes every `period` days (a
per-listing period drawn around 1 / daily_change_rate, with its own phase), so
a small share of prices changes every day. Each zone deviates from the chain's
base price on a share of listings. Specials are drawn per zone and week. All
draws are hashes of their key (hashing.unit), so the order in which prices are
asked for never changes them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pricegroups.demo.hashing import unit
from pricegroups.demo.model import Chain, Listing, PricingRules, TruePrice, Zone

CENT = Decimal("0.01")
_MEASURES = {("g", 100): "100g", ("g", 1000): "1kg", ("ml", 100): "100mL", ("ml", 1000): "1L"}


def money(value: Decimal) -> str:
    """How every layout writes an amount on a page: "$3.50"."""
    return f"${value:.2f}"


def shelf_price(value: float, draw: float) -> Decimal:
    """Round a computed price the way shelves do: to a 10 c step, half of them ending in 9."""
    cents = max(60, int(round(value * 100)))
    cents = cents // 10 * 10 - (1 if draw < 0.5 else 0)
    return (Decimal(cents) / 100).quantize(CENT)


class PriceEngine:
    """Computes TruePrice values for one scenario; caches are pure memoisation."""

    def __init__(self, seed: int, rules: PricingRules) -> None:
        self.seed = seed
        self.rules = rules
        self._clock: dict[tuple[str, str], tuple[int, int]] = {}
        self._regular: dict[tuple, Decimal] = {}
        self._prices: dict[tuple, TruePrice] = {}

    def version(self, chain: str, listing: Listing, day: int) -> int:
        """Which regular price the listing has on `day` (0 on day 0)."""
        clock = self._clock.get((chain, listing.sku))
        if clock is None:
            rate = max(self.rules.daily_change_rate, 1e-6)
            period = max(2, round((0.5 + unit(self.seed, chain, listing.sku, "period")) / rate))
            phase = int(unit(self.seed, chain, listing.sku, "phase") * period)
            clock = self._clock[(chain, listing.sku)] = (period, phase)
        period, phase = clock
        return (day + phase) // period

    def regular_price(self, chain: str, zone: Zone, listing: Listing, version: int) -> Decimal:
        key = (chain, zone.code, listing.sku, version)
        price = self._regular.get(key)
        if price is None:
            seed, sku = self.seed, listing.sku
            base = float(listing.base_price)
            if version:
                base *= 0.9 + 0.2 * unit(seed, chain, sku, version, "drift")
            share = self.rules.independent_deviation_share if zone.independent else self.rules.zone_deviation_share
            if unit(seed, chain, zone.code, sku, version, "deviates") < share:
                amount = unit(seed, chain, zone.code, sku, version, "amount")
                base *= 1 + (0.05 + 0.15 * amount) * (1 if amount < 0.6 else -1)
            price = self._regular[key] = shelf_price(base, unit(seed, chain, sku, version, "ending"))
        return price

    def price(self, chain: Chain, zone: Zone, listing: Listing, day: int) -> TruePrice:
        """The price of `listing` in `zone` on `day`, as every store priced by that zone shows it."""
        version = self.version(chain.code, listing, day)
        week = day // self.rules.week_length
        key = (chain.code, zone.code, listing.sku, version, week)
        cached = self._prices.get(key)
        if cached is not None:
            return cached
        regular = self.regular_price(chain.code, zone, listing, version)
        seed, sku = self.seed, listing.sku
        price, was, promo, qty, deal = regular, None, None, None, None
        if unit(seed, chain.code, zone.code, sku, week, "special") < self.rules.special_share:
            kind = unit(seed, chain.code, zone.code, sku, week, "kind")
            if kind < self.rules.multibuy_share and regular <= 12:
                qty = 2 if kind < self.rules.multibuy_share * 0.7 else 3
                deal = (Decimal(int(float(regular) * qty * 0.85 * 10)) / 10).quantize(CENT)
                if deal >= regular * qty or deal <= 0:
                    deal = (regular * qty - Decimal("0.50")).quantize(CENT)
                promo = f"{qty} for {money(deal)}"
            else:
                off = 0.1 + 0.4 * unit(seed, chain.code, zone.code, sku, week, "off")
                price = shelf_price(float(regular) * (1 - off), unit(seed, chain.code, sku, week, "special-ending"))
                if price >= regular:
                    price = regular - Decimal("0.10")
                was, promo = regular, f"Save {money(regular - price)}"
        unit_price, measure = self.unit_price(chain, listing, price)
        result = self._prices[key] = TruePrice(
            price=price,
            was_price=was,
            on_special=promo is not None,
            promo_text=promo,
            multibuy_qty=qty,
            multibuy_price=deal,
            unit_price=unit_price,
            unit_measure=measure,
        )
        return result

    @staticmethod
    def unit_price(chain: Chain, listing: Listing, price: Decimal) -> tuple[Decimal | None, str | None]:
        if not listing.show_unit_price:
            return None, None
        if listing.size_unit == "each":
            per, measure = Decimal(1), "each"
        else:
            per, measure = Decimal(chain.unit_basis), _MEASURES[(listing.size_unit, chain.unit_basis)]
        value = (price * per / listing.size_value).quantize(CENT, rounding=ROUND_HALF_UP)
        return max(value, CENT), measure
