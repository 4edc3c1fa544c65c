"""A cache for functions of one text: bounded in entries, and blind to long texts.

The same few hundred labels and values recur on every page, so the text normalisers are cached. A
long text (prose, a hostile cell of a megabyte) is computed but not kept: an entry-bounded cache
holding such texts would keep them long after their page.

The cached function is a dict's own lookup: a hit costs no Python call at all. (functools.lru_cache
behind a Python wrapper cost two calls a hit, ~500 times a page: an eighth of the whole parse.)
A full cache is emptied rather than evicted entry by entry: the working set refills it in one page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MAX_CACHED_LEN = 512


class _TextCache(dict[str, T]):
    __slots__ = ("fn", "maxsize")

    def __init__(self, fn: Callable[[str], T], maxsize: int) -> None:
        super().__init__()
        self.fn = fn
        self.maxsize = maxsize

    def __missing__(self, text: str) -> T:
        value = self.fn(text)
        if len(text) <= MAX_CACHED_LEN:
            if len(self) >= self.maxsize:
                self.clear()
            self[text] = value
        return value


def text_cache(maxsize: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Decorate a function of one str argument."""

    def decorate(fn: Callable[[str], T]) -> Callable[[str], T]:
        return _TextCache(fn, maxsize).__getitem__

    return decorate
