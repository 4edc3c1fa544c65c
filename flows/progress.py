"""The progress of a run's stages, for whoever shows it.

The flows report each stage's units (agencies fetched, pages parsed) as they are done; nothing
listens unless the command line installs a listener (its rich progress bars). A scheduled run has
none, and tasks that run elsewhere (on a Dask cluster) report nothing: progress is a display, never
part of a run's result.
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


def advance(stage: str, n: int = 1) -> None:
    """`n` more units of `stage` are done (from any thread); a stage not started is not counted."""
    with _lock:
        counts = _stages.get(stage)
        if counts is None:
            return
        counts[0] += n
        done, total = counts
    _report(stage, done, total)


def _report(stage: str, done: int, total: int) -> None:
    listener = _listener
    if listener is not None:
        with suppress(Exception):  # a broken display must never fail the run
            listener(stage, done, total)
