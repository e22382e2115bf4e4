"""What every layout shares: the page view, page chrome with off-host links, money and escaping."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from pricegroups.demo.model import Chain, Item, Store
from pricegroups.demo.pricing import money

__all__ = ["CatalogueView", "escape", "money", "page", "cut_off"]


@dataclass(frozen=True)
class CatalogueView:
    """One catalogue page of one store: its items and where it sits in the store's catalogue."""

    chain: Chain
    store: Store
    items: list[Item]
    page: int  # 1-based
    pages: int
    total: int  # items in the store's (served) catalogue
    start: int  # 0-based position of the first item
    size: int | None = None  # the page size asked for (an API's limit); None: the chain's page size


def page(chain: Chain, title: str, body: str, head: str = "", trap: str = "") -> str:
    """A full HTML page with the chain's header, off-host ads/social links and the robots-disallowed link."""
    c = escape(chain.code)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)} | {escape(chain.name)}</title>{head}</head>\n<body>"
        f"<header><a class=\"logo\" href=\"/{c}/\">{escape(chain.name)}</a>"
        f" <a class=\"ad\" href=\"http://ads.example.com/click?site={c}\">Win a year of groceries!</a></header>\n"
        f"<main>{body}</main>\n"
        f"<footer><a class=\"account\" href=\"{trap}\">{trap.rsplit('/', 1)[-1].title()}</a>"
        f" <a href=\"https://social.example.org/{c}\">Follow us</a>"
        f" <a href=\"http://ads.example.com/partners?from={c}\">Partners</a></footer>\n</body></html>\n"
    )


def cut_off(html: str, share: float = 0.55) -> str:
    """A malformed page: the first part of the HTML, cut mid-tag, as a broken upstream would send it."""
    cut = int(len(html) * share)
    lt = html.rfind("<", 0, cut)
    if lt < 0:
        return html[:cut]
    gt = html.find(">", lt)
    return html[: lt + max(2, (gt - lt) // 2)]
