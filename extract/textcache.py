"""A cache for functions of one text: functools.lru_cache for short texts, none for long ones.

The same few hundred labels and values recur on every page, so the text normalisers are cached. A
long text (prose, a hostile cell of a megabyte) is computed but not kept: an entry-bounded cache
holding such texts would keep them long after their page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

T = TypeVar("T")
MAX_CACHED_LEN = 512
# Entries of the page-text caches. The labels recur on every page and stay; what a page has of its own (its
# agency's name, its prose lines, ~2 texts a page) only churns through: a cache of 131,072 entries kept
# growing for tens of thousands of pages in each parse process of a reparse (BENCHMARKS.md, National scale).
PAGE_TEXTS = 16_384


def text_cache(maxsize: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Decorate a function of one str argument."""

    def decorate(fn: Callable[[str], T]) -> Callable[[str], T]:
        cached = lru_cache(maxsize)(fn)

        @wraps(fn)
        def call(text: str) -> T:
            return cached(text) if len(text) <= MAX_CACHED_LEN else fn(text)

        return call

    return decorate
