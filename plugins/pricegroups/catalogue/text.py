"""Folding text into comparison keys: brands and product names.

Pure functions. A key ignores what varies between sites for one thing: case,
accents, punctuation, "&" against "and", apostrophes (so "Smith's" is
"Smiths"), legal suffixes of brands ("Pty Ltd") and, for names, the brand
repeated in the name, the pack size and word order.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Mapping

from pricegroups.catalogue.sizes import strip_sizes

LEGAL_SUFFIXES = frozenset(
    {"pty", "ltd", "limited", "inc", "incorporated", "llc", "plc", "gmbh", "corp", "corporation", "co", "company"}
)
_MARKS = re.compile(r"[™®©℠]")
_APOSTROPHES = re.compile(r"['’‘`´ʼ]")
_AND = re.compile(r"\s*[&+]\s*")
_NON_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Compatibility-decomposed, accents dropped, case-folded."""
    if text.isascii():
        return text.casefold()  # nothing to decompose: the common case, 10x faster
    decomposed = unicodedata.normalize("NFKD", _MARKS.sub("", text))  # before NFKD turns ™ into "TM"
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).casefold()


def tokens(text: str) -> list[str]:
    """The words of a folded text: '&' is 'and', apostrophes vanish, other punctuation splits."""
    text = _APOSTROPHES.sub("", text)
    text = _AND.sub(" and ", text)
    return [t for t in _NON_WORD.split(text) if t]


@lru_cache(maxsize=65_536)  # a run has thousands of items per brand spelling
def brand_key(name: str | None) -> str | None:
    """The key of a brand name, or None when nothing identifying is left."""
    if not name:
        return None
    words = tokens(fold(name))
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    return "".join(words) or None


def canonical_brand_key(key: str | None, aliases: Mapping[str, str]) -> str | None:
    """Follow the user's alias table (alias_key -> brand_key) to the brand a key stands for."""
    seen: set[str] = set()
    while key is not None and key in aliases and key not in seen:
        seen.add(key)
        key = aliases[key]
    return key


def name_key(name: str, brand: str | None = None) -> str:
    """The key of a product name: without the brand in front, the size, punctuation and word order."""
    folded = fold(name)
    words = tokens(strip_sizes(folded))
    brand_compact = brand_key(brand) or ""
    if brand_compact:
        words = _without_brand_prefix(words, brand_compact) or words
    if not words:
        # nothing but symbols (an emoji name): the folded text itself is the key
        return " ".join(folded.split())
    return " ".join(sorted(words))


def _without_brand_prefix(words: list[str], brand_compact: str) -> list[str]:
    joined = ""
    for i, word in enumerate(words):
        joined += word
        if joined == brand_compact:
            return words[i + 1:]
        if not brand_compact.startswith(joined):
            break
    return words
