"""Prices as a pure function of (scenario, zone, listing, day), memoised.

A listing's regular price has *versions*: it changes every `period` days (a
per-listing period drawn around 1 / daily_change_rate, with its own phase), so
a small share of prices changes every day. Each zone deviates from the chain's
base price on a share of listings. Specials are drawn per zone and week. A
near-twin zone (Zone.twin_of) copies its twin's list except on a fixed share
of listings, whose regular price it moves by 4-12 % (specials still follow the
twin's draws). A store's own prices (Store.own_share) are its zone's regular
price plus 6-15 %; a glitch (PricingRules.glitch_share) moves the day's shown
price by 5-20 % up or down, for one store on one day. All draws are hashes of their key (hashing.unit), so the
order in which prices are asked for never changes them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pricegroups.demo.hashing import unit
from pricegroups.demo.model import Chain, Listing, PricingRules, Store, TruePrice, Zone

CENT = Decimal("0.01")
DIME = Decimal("0.10")
_MEASURES = {("g", 100): "100g", ("g", 1000): "1kg", ("ml", 100): "100mL", ("ml", 1000): "1L"}


def money(value: Decimal) -> str:
    """How every layout writes an amount on a page: "$3.50"."""
    return f"${value:.2f}"


def shelf_price(value: float, draw: float) -> Decimal:
    """Round a computed price the way shelves do: to a 10 c step, half of them ending in 9."""
    cents = max(60, int(round(value * 100)))
    cents = cents // 10 * 10 - (1 if draw < 0.5 else 0)
    return (Decimal(cents) / 100).quantize(CENT)


def lowest_draws(seed: int, owner: tuple, skus: list[str], share: float, what: str) -> frozenset[str]:
    """The round(share * n) SKUs (at least one when share > 0) with the lowest draw per (owner, sku)."""
    if share <= 0 or not skus:
        return frozenset()
    count = max(1, round(share * len(skus)))
    return frozenset(sorted(skus, key=lambda sku: (unit(seed, *owner, sku, what), sku))[:count])


class PriceEngine:
    """Computes TruePrice values for one scenario; caches are pure memoisation."""

    def __init__(self, seed: int, rules: PricingRules) -> None:
        self.seed = seed
        self.rules = rules
        self._clock: dict[tuple[str, str], tuple[int, int]] = {}
        self._regular: dict[tuple, Decimal] = {}
        self._twin_regular: dict[tuple, Decimal] = {}
        self._twin_skus: dict[tuple[str, str], frozenset[str]] = {}
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

    # ---- near-twin zones ------------------------------------------------------------------------

    @staticmethod
    def twin(chain: Chain, zone: Zone) -> Zone:
        """The zone whose list a near-twin zone copies (Scenario validates that it exists)."""
        return next(z for z in chain.zones if z.code == zone.twin_of)

    def twin_skus(self, chain: Chain, zone: Zone) -> frozenset[str]:
        """SKUs on which a near-twin zone's list differs from its twin's: the same set every day.

        Exactly round(twin_share * listings) of them (at least one): those with the lowest
        draw per (zone, sku), so the share is what the scenario says even for small chains.
        """
        key = (chain.code, zone.code)
        skus = self._twin_skus.get(key)
        if skus is None:
            skus = frozenset()
            if zone.twin_of is not None:
                skus = lowest_draws(self.seed, (chain.code, zone.code), [lst.sku for lst in chain.listings],
                                    zone.twin_share, "twin")
            self._twin_skus[key] = skus
        return skus

    def zone_regular(self, chain: Chain, zone: Zone, listing: Listing, version: int) -> Decimal:
        """The zone's regular price of a listing version, near-twin zones included."""
        if zone.twin_of is None:
            return self.regular_price(chain.code, zone, listing, version)
        base = self.regular_price(chain.code, self.twin(chain, zone), listing, version)
        if listing.sku not in self.twin_skus(chain, zone):
            return base
        key = (chain.code, zone.code, listing.sku, version)
        price = self._twin_regular.get(key)
        if price is None:
            draw = unit(self.seed, chain.code, zone.code, listing.sku, "twin-amount")  # fixed per (zone, sku)
            up = draw < 0.5
            change = (0.04 + 0.16 * (draw % 0.5)) * (1 if up else -1)  # +-(4 %..12 %)
            ending = unit(self.seed, chain.code, listing.sku, version, "ending")
            price = shelf_price(float(base) * (1 + change), ending)
            if price == base:  # shelf rounding ate a small change on a cheap item: keep the lists apart
                price = base + DIME if up or base < Decimal("0.69") else base - DIME
            self._twin_regular[key] = price
        return price

    # ---- prices ----------------------------------------------------------------------------------

    def price(
        self, chain: Chain, zone: Zone, listing: Listing, day: int, version: int | None = None
    ) -> TruePrice:
        """The price of `listing` in `zone` on `day`, as every store priced by that zone shows it.

        `version` (default: the listing's version on `day`) asks for another regular price
        with `day`'s specials: what a store that is late with a price change shows.
        """
        if version is None:
            version = self.version(chain.code, listing, day)
        week = day // self.rules.week_length
        key = (chain.code, zone.code, listing.sku, version, week)
        cached = self._prices.get(key)
        if cached is not None:
            return cached
        if zone.twin_of is None:
            regular = self.regular_price(chain.code, zone, listing, version)
            result = self._with_specials(chain, zone.code, listing, regular, week)
        else:
            twin = self.twin(chain, zone)
            if listing.sku in self.twin_skus(chain, zone):  # the twin's special draws on this zone's price
                result = self._with_specials(chain, twin.code, listing,
                                             self.zone_regular(chain, zone, listing, version), week)
            else:
                result = self.price(chain, twin, listing, day, version)
        self._prices[key] = result
        return result

    def _with_specials(self, chain: Chain, specials_zone: str, listing: Listing, regular: Decimal,
                       week: int) -> TruePrice:
        """`regular` with the week's special of `specials_zone`, if it has one on this listing."""
        seed, sku = self.seed, listing.sku
        price, was, promo, qty, deal = regular, None, None, None, None
        if unit(seed, chain.code, specials_zone, sku, week, "special") < self.rules.special_share:
            kind = unit(seed, chain.code, specials_zone, sku, week, "kind")
            if kind < self.rules.multibuy_share and regular <= 12:
                qty = 2 if kind < self.rules.multibuy_share * 0.7 else 3
                deal = (Decimal(int(float(regular) * qty * 0.85 * 10)) / 10).quantize(CENT)
                if deal >= regular * qty or deal <= 0:
                    deal = (regular * qty - Decimal("0.50")).quantize(CENT)
                promo = f"{qty} for {money(deal)}"
            else:
                off = 0.1 + 0.4 * unit(seed, chain.code, specials_zone, sku, week, "off")
                price = shelf_price(float(regular) * (1 - off), unit(seed, chain.code, sku, week, "special-ending"))
                if price >= regular:
                    price = regular - Decimal("0.10")
                was, promo = regular, f"Save {money(regular - price)}"
        unit_price, measure = self.unit_price(chain, listing, price)
        return TruePrice(
            price=price,
            was_price=was,
            on_special=promo is not None,
            promo_text=promo,
            multibuy_qty=qty,
            multibuy_price=deal,
            unit_price=unit_price,
            unit_measure=measure,
        )

    def own_price(self, chain: Chain, zone: Zone, store: Store, listing: Listing, day: int) -> TruePrice:
        """A store's own price of a listing: its zone's regular price plus 6-15 %, never on special."""
        version = self.version(chain.code, listing, day)
        regular = self.zone_regular(chain, zone, listing, version)
        markup = 0.06 + 0.09 * unit(self.seed, chain.code, store.code, listing.sku, "own-amount")
        ending = unit(self.seed, chain.code, listing.sku, version, "ending")
        price = shelf_price(float(regular) * (1 + markup), ending)
        if price <= regular:
            price = regular + DIME
        unit_price, measure = self.unit_price(chain, listing, price)
        return TruePrice(price=price, unit_price=unit_price, unit_measure=measure)

    def glitch_price(self, chain: Chain, store: Store, listing: Listing, shown: TruePrice, day: int) -> TruePrice:
        """What a store shows on a glitch day: the price it would show moved 5-20 % up or down, no special.

        Drawn per (store, sku, day), so the same glitch never repeats on another day.
        """
        draw = unit(self.seed, chain.code, store.code, listing.sku, day, "glitch-amount")
        change = (0.05 + 0.3 * (draw % 0.5)) * (1 if draw < 0.5 else -1)  # +-(5 %..20 %)
        price = shelf_price(float(shown.price) * (1 + change), unit(self.seed, chain.code, listing.sku, day, "ending"))
        if price == shown.price:  # shelf rounding ate the change on a cheap item: a glitch always shows
            price = shown.price + DIME
        unit_price, measure = self.unit_price(chain, listing, price)
        return TruePrice(price=price, unit_price=unit_price, unit_measure=measure)

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
