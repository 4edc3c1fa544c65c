"""The progress of a run's stages (agencies fetched, pages parsed), for the command line's bars.

Nothing listens unless the command line installs a listener; tasks that run elsewhere (on a Dask
cluster) report nothing: progress is a display, never part of a run's result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress

Listener = Callable[[str, int, int], None]  # stage, done, total

_listener: Listener | None = None
_lock = threading.Lock()
_stages: dict[str, list[int]] = {}  # stage -> [done, total]


def listen(listener: Listener | None) -> None:
    """Install (or, with None, remove) this process's listener."""
    global _listener
    _listener = listener


def start(stage: str, total: int) -> None:
    """A stage begins with `total` units to do."""
    with _lock:
        _stages[stage] = [0, total]
    _report(stage, 0, total)


def advance(stage: str, n: int = 1, more: int = 0) -> None:
    """`n` more units of `stage` are done, and its total grows by `more` (from any thread); a stage not
    started is not counted."""
    with _lock:
        counts = _stages.get(stage)
        if counts is None:
            return
        counts[0] += n
        counts[1] += more
        done, total = counts
    _report(stage, done, total)


def _report(stage: str, done: int, total: int) -> None:
    listener = _listener
    if listener is not None:
        with suppress(Exception):  # a broken display must never fail the run
            listener(stage, done, total)
