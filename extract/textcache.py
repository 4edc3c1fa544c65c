"""A cache for functions of one text: bounded in entries, and blind to long texts.

The same few hundred labels and values recur on every page, so the text normalisers are cached. A
long text (prose, a hostile cell of a megabyte) is computed but not kept: an entry-bounded cache
holding such texts would keep them long after their page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
MAX_CACHED_LEN = 512


def text_cache(maxsize: int) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def wrapper(text: str, *args: Any) -> Any:
            return cached(text, *args) if len(text) <= MAX_CACHED_LEN else fn(text, *args)

        wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
