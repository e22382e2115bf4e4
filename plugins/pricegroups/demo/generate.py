"""The built-in default scenario, generated deterministically from a seed.

Three chains with different layouts, about 150 stores, 4-10 hidden zones per
chain (a few single-store zones: independently priced stores, and a near-twin
of one zone in two chains), 500-1,300 listings per chain drawn from one product
catalogue (so many products are sold by several chains with the same barcode,
under brand spellings that differ by chain), a few stores with persistent own
prices or late price changes, and events spread over days 2-13 of a 14-day
demo. Draws use a local `random.Random(seed)` and only its `random()` method,
whose sequence is stable across Python versions; the near-twin zones and the
store deviations draw from streams of their own, after everything else.

`Knobs` sets what makes grouping hard (near-twin distance, one-off glitches,
own prices, late stores, the rate of price changes) for a sensitivity run (bench/sensitivity.py); the
default knobs give exactly the scenario built without them.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal

from pricegroups.demo.model import Chain, Event, Listing, PricingRules, Store, Zone
from pricegroups.demo.scenario import Scenario

# canonical brand -> spelling per chain (freshmart, valueway, greengrocer) when they differ
BRAND_SPELLINGS = {
    "Coca-Cola": ("Coca-Cola", "Coca Cola", "COCA-COLA"),
    "Arnott's": ("Arnott's", "Arnotts", "Arnott's"),
    "Kellogg's": ("Kellogg's", "Kelloggs", "KELLOGG'S"),
    "Uncle Tobys": ("Uncle Tobys", "Uncle Tobys", "Uncle Toby's"),
    "Nestlé": ("Nestlé", "Nestle", "Nestle"),
    "Smith's": ("Smith's", "Smiths", "Smith's"),
    "Helga's": ("Helga's", "Helgas", "Helga's"),
    "Leggo's": ("Leggo's", "Leggos", "Leggo's"),
    "MasterFoods": ("MasterFoods", "Masterfoods", "Master Foods"),
    "Red Bull": ("Red Bull", "Red Bull", "RedBull"),
    "Dairy Farmers": ("Dairy Farmers", "Dairy Farmers", "DAIRY FARMERS"),
}

# brand -> categories it makes
BRANDS = {
    "Coca-Cola": ["Drinks"], "Pepsi": ["Drinks"], "Schweppes": ["Drinks"], "Kirks": ["Drinks"],
    "Red Bull": ["Drinks"], "Mount Franklin": ["Drinks"], "Golden Circle": ["Drinks", "Pantry"],
    "Berri": ["Drinks"], "Lipton": ["Drinks"], "Dairy Farmers": ["Dairy"], "Pauls": ["Dairy"],
    "a2": ["Dairy"], "Bega": ["Dairy", "Pantry"], "Devondale": ["Dairy"], "Chobani": ["Dairy"],
    "Jalna": ["Dairy"], "Yoplait": ["Dairy"], "Mainland": ["Dairy"], "Western Star": ["Dairy"],
    "San Remo": ["Pantry"], "Barilla": ["Pantry"], "SunRice": ["Pantry"], "Leggo's": ["Pantry"],
    "Dolmio": ["Pantry"], "Heinz": ["Pantry"], "John West": ["Pantry"], "Sirena": ["Pantry"],
    "Kraft": ["Pantry"], "Cottee's": ["Pantry"], "White Wings": ["Pantry"], "CSR": ["Pantry"],
    "Capilano": ["Pantry"], "MasterFoods": ["Pantry"], "Continental": ["Pantry"], "Maggi": ["Pantry"],
    "Arnott's": ["Snacks"], "Smith's": ["Snacks"], "Doritos": ["Snacks"], "Cadbury": ["Snacks"],
    "Nestlé": ["Snacks", "Breakfast"], "Lindt": ["Snacks"], "Uncle Tobys": ["Breakfast", "Snacks"],
    "Kellogg's": ["Breakfast"], "Sanitarium": ["Breakfast"], "Carman's": ["Breakfast", "Snacks"],
    "Birds Eye": ["Frozen"], "McCain": ["Frozen"], "Streets": ["Frozen"], "Peters": ["Frozen"],
    "Finish": ["Household"], "Omo": ["Household"], "Sorbent": ["Household"], "Quilton": ["Household"],
    "Morning Fresh": ["Household"], "Colgate": ["Household"], "Sunsilk": ["Household"],
    "Tip Top": ["Bakery"], "Helga's": ["Bakery"], "Mission": ["Bakery"], "Golden": ["Bakery"],
}

# category -> product lines: (name, [size specs], typical price of the first size)
# a size spec is (pack count, quantity per unit, unit)
L, ML, G, KG, EA = "L", "ml", "g", "kg", "each"
LINES: dict[str, list[tuple[str, list[tuple[int, float, str]], float]]] = {
    "Drinks": [
        ("Classic Soft Drink", [(1, 2, L), (1, 1.25, L), (10, 375, ML), (24, 375, ML), (1, 600, ML)], 3.6),
        ("No Sugar Soft Drink", [(1, 2, L), (10, 375, ML), (1, 600, ML)], 3.6),
        ("Lemonade", [(1, 1.25, L), (10, 375, ML)], 2.8),
        ("Sparkling Water", [(1, 1.25, L), (4, 250, ML)], 1.9),
        ("Orange Juice", [(1, 2, L), (1, 1, L)], 4.8),
        ("Apple Juice", [(1, 2, L), (6, 200, ML)], 4.2),
        ("Energy Drink", [(1, 250, ML), (4, 250, ML)], 2.9),
        ("Iced Tea Peach", [(1, 1.5, L), (1, 500, ML)], 3.2),
    ],
    "Dairy": [
        ("Full Cream Milk", [(1, 2, L), (1, 3, L), (1, 1, L)], 3.3),
        ("Lite Milk", [(1, 2, L), (1, 1, L)], 3.3),
        ("Greek Yoghurt", [(1, 1, KG), (1, 500, G)], 7.0),
        ("Vanilla Yoghurt", [(4, 140, G), (1, 1, KG)], 5.0),
        ("Tasty Cheese Block", [(1, 500, G), (1, 1, KG)], 8.5),
        ("Cheddar Slices", [(1, 250, G), (1, 500, G)], 4.5),
        ("Salted Butter", [(1, 250, G), (1, 500, G)], 4.2),
        ("Thickened Cream", [(1, 300, ML), (1, 600, ML)], 3.4),
    ],
    "Pantry": [
        ("Spaghetti No 5", [(1, 500, G), (1, 1, KG)], 2.2),
        ("Penne Rigate", [(1, 500, G)], 2.2),
        ("Basmati Rice", [(1, 1, KG), (1, 5, KG)], 3.5),
        ("Jasmine Rice", [(1, 1, KG), (1, 2, KG)], 3.3),
        ("Tomato Basil Pasta Sauce", [(1, 500, G), (1, 700, G)], 3.6),
        ("Baked Beans", [(1, 420, G), (4, 220, G)], 1.8),
        ("Tuna in Springwater", [(1, 95, G), (1, 425, G)], 1.7),
        ("Smooth Peanut Butter", [(1, 375, G), (1, 780, G)], 4.4),
        ("Strawberry Jam", [(1, 500, G)], 3.9),
        ("Plain Flour", [(1, 1, KG), (1, 2, KG)], 2.1),
        ("White Sugar", [(1, 1, KG), (1, 2, KG)], 1.9),
        ("Squeeze Honey", [(1, 500, G), (1, 340, G)], 6.5),
        ("Tomato Ketchup", [(1, 500, ML), (1, 1, L)], 3.5),
        ("Chicken Stock", [(1, 1, L)], 3.0),
    ],
    "Snacks": [
        ("Original Potato Chips", [(1, 170, G), (1, 330, G)], 4.5),
        ("Salt & Vinegar Chips", [(1, 170, G)], 4.5),
        ("Milk Chocolate Block", [(1, 180, G), (1, 350, G)], 5.5),
        ("Chocolate Biscuits", [(1, 200, G), (1, 330, G)], 4.0),
        ("Shortbread Cream Biscuits", [(1, 250, G)], 3.2),
        ("Muesli Bars Choc Chip", [(6, 31, G), (12, 31, G)], 4.0),
        ("Rice Crackers Original", [(1, 100, G)], 2.4),
        ("Corn Chips Cheese", [(1, 170, G)], 4.3),
    ],
    "Breakfast": [
        ("Corn Flakes", [(1, 500, G), (1, 725, G)], 5.0),
        ("Wheat Biscuits", [(1, 575, G), (1, 1.2, KG)], 4.6),
        ("Quick Oats", [(1, 500, G), (1, 1, KG)], 3.2),
        ("Fruit & Nut Muesli", [(1, 750, G)], 6.0),
        ("Honey Puffs", [(1, 400, G)], 4.8),
    ],
    "Frozen": [
        ("Garden Peas", [(1, 1, KG), (1, 500, G)], 3.5),
        ("Mixed Vegetables", [(1, 1, KG)], 3.8),
        ("Straight Cut Chips", [(1, 1, KG), (1, 2, KG)], 4.0),
        ("Vanilla Ice Cream", [(1, 2, L), (4, 100, ML)], 6.0),
        ("Fish Fingers", [(1, 425, G)], 5.5),
        ("Supreme Pizza", [(1, 500, G)], 6.5),
    ],
    "Household": [
        ("Dishwasher Tablets", [(30, 1, EA), (60, 1, EA)], 13.0),
        ("Laundry Liquid", [(1, 2, L), (1, 1, L)], 12.0),
        ("Toilet Tissue 3 Ply", [(12, 1, EA), (24, 1, EA)], 9.0),
        ("Paper Towel", [(2, 1, EA), (4, 1, EA)], 4.5),
        ("Dishwashing Liquid Lemon", [(1, 500, ML), (1, 1, L)], 3.2),
        ("Toothpaste Total", [(1, 110, G), (2, 110, G)], 4.0),
        ("Shampoo Daily Care", [(1, 400, ML)], 6.0),
    ],
    "Bakery": [
        ("Wholemeal Bread", [(1, 700, G)], 4.2),
        ("White Sandwich Bread", [(1, 650, G)], 3.8),
        ("Multigrain Wraps", [(8, 1, EA)], 4.0),
        ("English Muffins", [(6, 1, EA)], 4.0),
        ("Crumpets", [(6, 1, EA)], 3.5),
    ],
    "Produce": [
        ("Royal Gala Apples", [(1, 1, KG)], 5.5),
        ("Bananas", [(1, 1, EA)], 0.8),
        ("Carrots", [(1, 1, KG)], 2.5),
        ("Brushed Potatoes", [(1, 2, KG)], 5.0),
        ("Hass Avocado", [(1, 1, EA)], 2.2),
        ("Baby Spinach", [(1, 120, G)], 3.5),
        ("Cherry Tomatoes", [(1, 250, G)], 3.9),
        ("Brown Onions", [(1, 1, KG)], 3.0),
    ],
}

# the other flavours/variants a line comes in, to make the catalogue big enough
VARIANTS = ["", "Family Pack", "Value Pack", "Organic", "Light", "Extra", "Premium", "Classic"]
# more variants for a bigger catalogue (scaled_scenario); the default scenario never uses them
MORE_VARIANTS = ["Sea Salt", "Gluten Free", "Reduced Fat", "Wholegrain", "Lemon Twist", "Berry Burst",
                 "Smoky", "Mild", "Honey Glazed", "Vanilla Bean", "Dark Cocoa", "Kids", "Deluxe", "Rustic",
                 "Heritage", "Harvest"]


@dataclass(frozen=True)
class ChainPlan:
    code: str
    name: str
    layout: str
    page_size: int
    unit_basis: int
    store_prefix: str
    stores: int
    zones: int  # regular zones; independents come on top
    independents: int
    share: float  # share of national-brand products carried
    own_brand: str
    barcode_hidden: float  # share of listings whose barcode the site does not show
    disallow: str
    twin_of: int = 0  # number (1-based) of the regular zone that gets a near-twin zone; 0: none
    twin_share: float = 0.0  # share of listings on which the near-twin's list differs
    twin_stores: int = 0  # regular stores the near-twin zone takes over (the store count stays)
    app: str | None = None  # the app layout served beside `layout` and scraped by the demo (model.APP_LAYOUTS)


@dataclass(frozen=True)
class Knobs:
    """What makes a scenario's grouping hard, set instead of drawn; the defaults are the demo's own draws.

    A sensitivity run varies these one at a time around the defaults to see where a grouping constant
    (max_member_deviation, shared_deviation_tolerance, the lateness thresholds) stops holding.
    """

    twin_share: float | None = None  # every near-twin zone's list distance; None: the plan's (1.2 %, 1.5 %)
    glitch_share: float = 0.0  # per store and day, listings shown at a one-off price (PricingRules.glitch_share)
    own_share: float | None = None  # own_share of the stores with own prices; None: drawn in 0.1-0.4 %
    own_stores: float = 0.1  # share of regular stores with own prices
    late_stores: float = 0.1  # share of regular stores late with price changes (lag_share drawn in 0.5-0.9)
    daily_change_rate: float | None = None  # share of regular prices changing a day; None: PricingRules' (0.6 %)

    def __post_init__(self) -> None:
        if self.twin_share is not None and not 0 < self.twin_share < 0.5:
            raise ValueError(f"twin_share must be in (0, 0.5), not {self.twin_share}")
        if self.own_share is not None and not 0 <= self.own_share < 0.5:
            raise ValueError(f"own_share must be in [0, 0.5), not {self.own_share}")
        if not 0 <= self.glitch_share < 0.5:
            raise ValueError(f"glitch_share must be in [0, 0.5), not {self.glitch_share}")
        if self.daily_change_rate is not None and not 0 < self.daily_change_rate <= 0.5:
            raise ValueError(f"daily_change_rate must be in (0, 0.5], not {self.daily_change_rate}")
        if not (0 <= self.own_stores <= 1 and 0 <= self.late_stores <= 1 and self.own_stores + self.late_stores <= 1):
            raise ValueError("own_stores and late_stores are shares of the regular stores, together at most 1")

    def plan(self, plan: "ChainPlan") -> "ChainPlan":
        """The chain plan with this twin distance (chains without a near-twin stay without)."""
        if self.twin_share is None or not plan.twin_of:
            return plan
        return dataclasses.replace(plan, twin_share=self.twin_share)

    @property
    def pricing(self) -> PricingRules:
        rate = PricingRules().daily_change_rate if self.daily_change_rate is None else self.daily_change_rate
        return PricingRules(glitch_share=self.glitch_share, daily_change_rate=rate)


DEFAULT_KNOBS = Knobs()


PLANS = (
    ChainPlan("freshmart", "FreshMart", "grid", 60, 100, "FM", 60, 7, 2, 0.55, "FreshMart", 0.0,
              "/freshmart/checkout", twin_of=1, twin_share=0.012, twin_stores=8),
    ChainPlan("valueway", "ValueWay", "table", 80, 1000, "VW", 55, 5, 1, 0.42, "ValueWay Essentials", 0.08,
              "/valueway/cart", twin_of=2, twin_share=0.015, twin_stores=6, app="api"),
    ChainPlan("greengrocer", "Greengrocer", "jsonld", 48, 100, "GG", 35, 3, 1, 0.22, "Greengrocer Co.", 0.05,
              "/greengrocer/account", app="nextdata"),
)

SUBURBS = [
    ("Newtown", "NSW", 2042), ("Parramatta", "NSW", 2150), ("Bondi", "NSW", 2026), ("Chatswood", "NSW", 2067),
    ("Manly", "NSW", 2095), ("Penrith", "NSW", 2750), ("Hornsby", "NSW", 2077), ("Liverpool", "NSW", 2170),
    ("Randwick", "NSW", 2031), ("Ryde", "NSW", 2112), ("Fitzroy", "VIC", 3065), ("Carlton", "VIC", 3053),
    ("Brunswick", "VIC", 3056), ("St Kilda", "VIC", 3182), ("Footscray", "VIC", 3011), ("Box Hill", "VIC", 3128),
    ("Geelong", "VIC", 3220), ("Ballarat", "VIC", 3350), ("Bendigo", "VIC", 3550), ("Dandenong", "VIC", 3175),
    ("Fortitude Valley", "QLD", 4006), ("Toowong", "QLD", 4066), ("Southport", "QLD", 4215),
    ("Cairns", "QLD", 4870), ("Townsville", "QLD", 4810), ("Ipswich", "QLD", 4305), ("Glenelg", "SA", 5045),
    ("Norwood", "SA", 5067), ("Unley", "SA", 5061), ("Fremantle", "WA", 6160), ("Subiaco", "WA", 6008),
    ("Joondalup", "WA", 6027), ("Hobart", "TAS", 7000), ("Launceston", "TAS", 7250), ("Belconnen", "ACT", 2617),
    ("Woden", "ACT", 2606), ("Darwin", "NT", 800), ("Wollongong", "NSW", 2500), ("Newcastle", "NSW", 2300),
    ("Gosford", "NSW", 2250),
]
STREETS = ["King St", "Church St", "Main Rd", "High St", "George St", "Victoria Rd", "Station St", "Hall St",
           "Pacific Hwy", "Smith St", "Beach Rd", "Queen St"]


def ean13(body12: str) -> str:
    digits = [int(c) for c in body12]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return body12 + str(check)


@dataclass(frozen=True)
class _Product:
    id: str
    brand: str  # canonical
    line: str
    variant: str
    category: str
    spec: tuple[int, float, str]
    price: float
    barcode: str


def _catalogue(r: random.Random, variant_names: list[str] = VARIANTS) -> list[_Product]:
    """The national-brand product catalogue every chain draws from (more variant names, more products)."""
    products = []
    for brand, categories in BRANDS.items():
        for category in categories:
            for line, specs, price in LINES[category]:
                if r.random() < 0.35:
                    continue
                variants = [v for v in variant_names if r.random() < 0.45] or [""]
                for variant in variants:
                    for spec in specs:
                        if r.random() < 0.2:
                            continue
                        scale = _quantity(spec) / _quantity(specs[0])
                        value = price * scale**0.8 * (0.8 + 0.4 * r.random())
                        n = len(products)
                        products.append(
                            _Product(f"P{n:05d}", brand, line, variant, category, spec, value,
                                     ean13(f"93{(n * 7919 + 104729) % 10**10:010d}"))
                        )
    return products


def _quantity(spec: tuple[int, float, str]) -> float:
    count, each, unit = spec
    return count * each * {"L": 1000, "kg": 1000}.get(unit, 1)


def size_of(spec: tuple[int, float, str], style: str) -> tuple[str, Decimal, str]:
    """(size text in the chain's style, total quantity, unit g/ml/each)."""
    count, each, unit = spec
    base = {"L": "ml", "ml": "ml", "kg": "g", "g": "g", "each": "each"}[unit]
    total = Decimal(str(_quantity(spec))).normalize()
    total = total.quantize(Decimal(1)) if total == total.to_integral_value() else total
    if unit == "each":
        text = {"grid": "each", "table": "ea", "jsonld": "each"}[style] if count == 1 else {
            "grid": f"{count} pack", "table": f"{count}pk", "jsonld": f"{count} pack"}[style]
        return text, Decimal(count), "each"
    amount = f"{Decimal(str(each)).normalize():f}"
    unit_text = {"grid": {"L": "L", "ml": "mL", "kg": "kg", "g": "g"},
                 "table": {"L": "l", "ml": "ml", "kg": "kg", "g": "g"},
                 "jsonld": {"L": "L", "ml": "mL", "kg": "kg", "g": "g"}}[style][unit]
    single = f"{amount} {unit_text}" if style == "jsonld" else f"{amount}{unit_text}"
    if count == 1:
        return single, total, base
    text = {"grid": f"{count} x {single}", "table": f"{count}x{single}", "jsonld": f"{count} x {single}"}[style]
    return text, total, base


def _listing(plan: ChainPlan, index: int, product: _Product, brand: str, r: random.Random) -> Listing:
    size, value, unit = size_of(product.spec, plan.layout)
    title = " ".join(p for p in (product.line, product.variant) if p)
    name = {
        "grid": f"{brand} {title}",
        "table": title,
        "jsonld": f"{brand} {title} {size}",
    }[plan.layout]
    sku = {
        "grid": f"{100000 + (index * 389) % 900000}",
        "table": f"VW-{(index * 613) % 1000000:06d}",
        "jsonld": f"GG-{(index * 2654435761) % 16**6:06X}",
    }[plan.layout]
    price = Decimal(str(round(product.price * (0.93 + 0.14 * r.random()), 2)))
    return Listing(
        sku=sku,
        product=product.id,
        brand=brand,
        name=name,
        size=size,
        size_value=value,
        size_unit=unit,
        category=product.category,
        barcode=None if r.random() < plan.barcode_hidden else product.barcode,
        base_price=max(price, Decimal("0.60")),
        show_unit_price=r.random() < 0.93,
    )


def _own_brand(plan: ChainPlan, offset: int, r: random.Random) -> list[_Product]:
    """The chain's private-label products: sold by it alone."""
    products = []
    for category in ("Produce", "Pantry", "Dairy", "Household", "Snacks"):
        for line, specs, price in LINES[category]:
            for spec in specs:
                if r.random() < 0.3:
                    continue
                n = offset + len(products)
                products.append(_Product(f"P{n:05d}", plan.own_brand, line, "", category, spec,
                                         price * (0.75 + 0.2 * r.random()),
                                         ean13(f"93{(n * 7919 + 104729) % 10**10:010d}")))
    return products


def _chain(plan: ChainPlan, chain_no: int, catalogue: list[_Product], seed: int,
           knobs: Knobs = DEFAULT_KNOBS) -> Chain:
    r = random.Random(f"{seed}/{plan.code}")
    picked = [p for p in catalogue if r.random() < plan.share]
    picked += _own_brand(plan, 50000 + 5000 * chain_no, r)
    picked.sort(key=lambda p: (p.category, p.brand, p.line, p.variant, _quantity(p.spec), p.id))
    listings = tuple(
        _listing(plan, i + 1, p, BRAND_SPELLINGS.get(p.brand, (p.brand,) * 3)[chain_no], r)
        for i, p in enumerate(picked)
    )
    zones = [Zone(f"{plan.store_prefix.lower()}-z{i + 1}") for i in range(plan.zones)]
    zones += [Zone(f"{plan.store_prefix.lower()}-solo{i + 1}", independent=True) for i in range(plan.independents)]
    stores = []
    weights = [0.5 + r.random() for _ in range(plan.zones)]
    for i in range(plan.stores):
        code = f"{plan.store_prefix}{i + 1:03d}"
        if i < plan.independents:
            zone = zones[plan.zones + i].code
        elif i < plan.independents + 2 * plan.zones:  # every regular zone gets at least two stores
            zone = zones[(i - plan.independents) % plan.zones].code
        else:
            x = r.random() * sum(weights)
            k = 0
            while x >= weights[k]:
                x -= weights[k]
                k += 1
            zone = zones[k].code
        suburb, state, postcode = SUBURBS[(i * 7 + chain_no * 13) % len(SUBURBS)]
        street = STREETS[int(r.random() * len(STREETS))]
        address = f"{1 + int(r.random() * 300)} {street}, {suburb} {state} {postcode:04d}"
        name = f"{plan.name} {suburb}" + ("" if (i * 7 + chain_no * 13) < len(SUBURBS) else f" {i + 1}")
        stores.append(Store(code, name, address, zone, round(0.8 + 0.17 * r.random(), 3)))
    # shuffle the store order so codes do not give zones away
    order = sorted(range(len(stores)), key=lambda k: r.random())
    zone_by_slot = [stores[k].zone for k in order]
    stores = [Store(s.code, s.name, s.address, zone_by_slot[i], s.range_share) for i, s in enumerate(stores)]
    zones, stores = _near_twin(plan, zones, stores, random.Random(f"{seed}/{plan.code}/twin"))
    stores = _deviating_stores(zones, stores, random.Random(f"{seed}/{plan.code}/deviations"), knobs)
    return Chain(
        code=plan.code,
        name=plan.name,
        layout=plan.layout,
        page_size=plan.page_size,
        unit_basis=plan.unit_basis,
        zones=tuple(zones),
        stores=tuple(stores),
        listings=listings,
        robots_disallow=(plan.disallow,),
        app=plan.app,
    )


def _near_twin(plan: ChainPlan, zones: list[Zone], stores: list[Store],
               r: random.Random) -> tuple[list[Zone], list[Store]]:
    """Add the plan's near-twin zone (after the regular zones) and move `twin_stores` regular stores into it.

    Every regular zone keeps at least two stores, the twinned zone three (one of
    them moves into the twin on day 3, see _events).
    """
    if not plan.twin_stores:
        return zones, stores
    regular = [z for z in zones if not z.independent]
    base = regular[plan.twin_of - 1]
    twin = Zone(f"{base.code}t", twin_of=base.code, twin_share=plan.twin_share)
    zones = regular + [twin] + [z for z in zones if z.independent]
    solo = {z.code for z in zones if z.independent}
    left = Counter(s.zone for s in stores)
    stores = list(stores)
    taken = 0
    for k in sorted(range(len(stores)), key=lambda k: r.random()):
        zone = stores[k].zone
        if taken < plan.twin_stores and zone not in solo and left[zone] > (3 if zone == base.code else 2):
            left[zone] -= 1
            stores[k] = replace(stores[k], zone=twin.code)
            taken += 1
    return zones, stores


def _deviating_stores(zones: list[Zone], stores: list[Store], r: random.Random,
                      knobs: Knobs = DEFAULT_KNOBS) -> list[Store]:
    """About 10 % of the regular stores get own prices (own_share 0.1-0.4 %), another 10 % are late
    with price changes (lag_share 0.5-0.9); independently priced stores get neither.

    `knobs` sets those shares and the own_share; the draws stay the same, so the late stores of a
    larger `late_stores` include the default's, and setting own_share keeps the same late stores.
    """
    solo = {z.code for z in zones if z.independent}
    order = [k for k in sorted(range(len(stores)), key=lambda k: r.random()) if stores[k].zone not in solo]
    n_own, n_late = (max(1, round(share * len(order))) if share else 0
                     for share in (knobs.own_stores, knobs.late_stores))
    stores = list(stores)
    for k in order[:n_own]:
        drawn = round(0.001 + 0.003 * r.random(), 4)
        stores[k] = replace(stores[k], own_share=drawn if knobs.own_share is None else knobs.own_share)
    for k in order[n_own : n_own + n_late]:
        stores[k] = replace(stores[k], lag_share=round(0.5 + 0.4 * r.random(), 2))
    return stores


def _events(chains: dict[str, Chain], catalogue_size=lambda chain, store: 0) -> list[Event]:
    """Scripted events on days 2-13; days 0 and 1 are clean so a bootstrap works."""

    def regular_stores(chain: str) -> list[Store]:
        c = chains[chain]
        solo = {z.code for z in c.zones if z.independent}
        return [s for s in c.stores if s.zone not in solo]

    def own_zones(chain: str) -> list[str]:  # regular zones with lists of their own (no near-twins)
        return [z.code for z in chains[chain].zones if not z.independent and z.twin_of is None]

    def twin_of(chain: str, zone: str) -> str | None:
        return next((z.code for z in chains[chain].zones if z.twin_of == zone), None)

    fm, vw, gg = regular_stores("freshmart"), regular_stores("valueway"), regular_stores("greengrocer")
    fm_zones, vw_zones, gg_zones = own_zones("freshmart"), own_zones("valueway"), own_zones("greengrocer")
    # freshmart, day 3: a plain store (no deviations, no other event) of zone 1 moves into its near-twin
    busy = {fm[5].code, fm[8].code, fm[10].code}
    in_z1 = [s for s in fm if s.zone == fm_zones[0]]
    plain = [s for s in in_z1 if s.code not in busy and not s.own_share and not s.lag_share]
    mover_fm = (plain or in_z1)[0]
    fm_target = twin_of("freshmart", fm_zones[0]) or next(z for z in fm_zones if z != mover_fm.zone)
    # valueway, day 6: the likely anchor of the biggest zone that does not converge (the engine prefers
    # stores with no prices of their own, then the largest catalogue) moves to another zone with a list
    # of its own (never its near-twin)
    converging = (vw_zones[-1], vw_zones[0])
    sizes = Counter(s.zone for s in vw)
    source = max((z for z in vw_zones if z not in converging), key=lambda z: sizes[z], default=vw_zones[0])
    mover_vw = max((s for s in vw if s.zone == source),
                   key=lambda s: (not s.own_share and not s.lag_share, catalogue_size("valueway", s.code),
                                  s.range_share))
    vw_target = next((z for z in vw_zones if z not in converging and z != source),
                     next(z for z in vw_zones if z != source))
    mover_gg = gg[4]
    return [
        Event("rate_limit", "valueway", day=2, store=vw[1].code, count=3, retry_after=1),
        Event("store_moves", "freshmart", day=3, store=mover_fm.code, zone=fm_target),
        Event("server_error", "freshmart", day=4, store=fm[5].code, count=2),
        Event("slow", "greengrocer", day=5, store=gg[1].code, page=2, delay=1.5),
        Event("server_error", "valueway", day=6, store=vw[6].code, count=None),
        Event("store_moves", "valueway", day=6, store=mover_vw.code, zone=vw_target),
        Event("zones_converge", "valueway", day=8, zone=vw_zones[-1], into=vw_zones[0]),
        Event("malformed", "greengrocer", day=9, store=gg[2].code, page=1),
        Event("store_closes", "freshmart", day=10, store=fm[8].code, mode="404"),
        Event("truncated", "valueway", day=11, store=vw[3].code, fraction=0.4),
        Event("store_moves", "greengrocer", day=12, store=mover_gg.code,
              zone=next(z for z in gg_zones if z != mover_gg.zone)),
        Event("rate_limit", "freshmart", day=12, count=5, retry_after=1),
        Event("malformed", "freshmart", day=13, store=fm[10].code, page=2),
        Event("store_closes", "valueway", day=13, store=vw[9].code, mode="page"),
    ]


def default_scenario(seed: int = 20260302, knobs: Knobs = DEFAULT_KNOBS) -> Scenario:
    """The built-in scenario (about 150 stores, three chains); the same seed gives the same scenario."""
    catalogue = _catalogue(random.Random(seed))
    chains = {plan.code: _chain(knobs.plan(plan), i, catalogue, seed, knobs) for i, plan in enumerate(PLANS)}
    return _with_events(seed, chains, knobs.pricing)


def compact_scenario(seed: int = 20260302, knobs: Knobs = DEFAULT_KNOBS) -> Scenario:
    """The default scenario's chains, layouts and events with about a quarter of the stores.

    For tests that run the whole DAG over several days: every kind of event
    still happens, on fewer stores (14 + 12 + 8); the near-twin zones take 3
    and 2 stores.
    """
    sizes = {"freshmart": (14, 4, 1, 3), "valueway": (12, 3, 1, 2), "greengrocer": (8, 2, 1, 0)}
    plans = [
        dataclasses.replace(knobs.plan(plan), stores=sizes[plan.code][0], zones=sizes[plan.code][1],
                            independents=sizes[plan.code][2], twin_stores=sizes[plan.code][3])
        for plan in PLANS
    ]
    catalogue = _catalogue(random.Random(seed))
    chains = {plan.code: _chain(plan, i, catalogue, seed, knobs) for i, plan in enumerate(plans)}
    return _with_events(seed, chains, knobs.pricing)


def _with_events(seed: int, chains: dict[str, Chain], pricing: PricingRules = PricingRules()) -> Scenario:
    """The scenario with its scripted events (movers chosen by the stores' actual catalogues)."""
    bare = Scenario(seed=seed, chains=chains.values(), events=(), pricing=pricing, days=14)
    return bare.with_events(_events(chains, lambda chain, store: len(bare.assortment(chain, store))))


MEAN_RANGE_SHARE = 0.885  # stores carry 80-97 % of their chain's listings (_chain)
_OWN_BRAND_CATEGORIES = ("Produce", "Pantry", "Dairy", "Household", "Snacks")


def scaled_scenario(stores: int = 2000, products: int = 2000, seed: int = 20260302) -> Scenario:
    """The default scenario's three chains and layouts at another size, without scripted events.

    `stores` in all, split between the chains as in the default (60 : 55 : 35);
    about `products` listings carried per store. Zones grow with the square
    root of a chain's stores (a handful to a few dozen), with about 1.5 %
    independently priced stores; the near-twin zones, own and late prices are
    drawn as in the default. A catalogue too small for `products` gets more
    variants per product line. For benchmarks (bench/day.py): no events, so
    every day is a normal day.
    """
    listings = math.ceil(products / MEAN_RANGE_SHARE)
    names = VARIANTS + MORE_VARIANTS
    wanted = math.ceil(len(VARIANTS) * listings / (0.85 * _BASE_CATALOGUE))
    if wanted > len(names):
        raise ValueError(f"at most about {int(0.85 * _BASE_CATALOGUE * len(names) / len(VARIANTS) * MEAN_RANGE_SHARE)}"
                         f" products a store, not {products}")
    catalogue = _catalogue(random.Random(seed), names[: max(len(VARIANTS), wanted)])
    own = 0.7 * sum(len(specs) for c in _OWN_BRAND_CATEGORIES for _, specs, _ in LINES[c])
    share = min(0.95, max(0.01, (listings - own) / len(catalogue)))
    plans = [_scaled_plan(plan, n, share) for plan, n in zip(PLANS, _split(stores, [p.stores for p in PLANS]))]
    chains = [_chain(plan, i, catalogue, seed) for i, plan in enumerate(plans)]
    return Scenario(seed=seed, chains=chains, events=(), days=14)


_BASE_CATALOGUE = 1996  # products of _catalogue with VARIANTS and the default seed (expected size per 8 names)


def _split(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` (the last part takes the rounding)."""
    parts = [round(total * w / sum(weights)) for w in weights[:-1]]
    return parts + [total - sum(parts)]


def _scaled_plan(plan: ChainPlan, stores: int, share: float) -> ChainPlan:
    """A chain plan with `stores` stores: sqrt(stores) zones, 1.5 % independents, a zone-sized near-twin."""
    independents = max(1, round(0.015 * stores))
    zones = max(2, min(round(math.sqrt(stores)), (stores - independents) // 4))
    twin_stores = max(2, round(stores / (zones + 1))) if plan.twin_of and zones > plan.twin_of else 0
    return dataclasses.replace(plan, stores=stores, zones=zones, independents=independents, share=share,
                               twin_stores=twin_stores)
