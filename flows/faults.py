"""Crash points for the crash-safety tests: `GOVREPORTS_FAULT=<point>:<n>` kills the process with
SIGKILL the n-th time the run (or one of its parse workers, which then kills the run too) reaches
<point> (fetch, parse, write, refresh). A real SIGKILL at a chosen place is what a test of crash
safety needs, and a kill from outside cannot aim that well.
Unset (always, outside those tests), a checkpoint costs one dictionary lookup."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

_counts: Counter[str] = Counter()
_lock = threading.Lock()
_also: list[int] = []  # in a parse worker: the run's process, killed with the worker


def also_kill(pid: int) -> None:
    """A crash point reached in a worker process kills the run too, as it would in the run's threads."""
    _also.append(pid)


def checkpoint(point: str) -> None:
    spec = os.environ.get("GOVREPORTS_FAULT")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name != point:
        return
    with _lock:
        _counts[point] += 1
        if _counts[point] >= int(n or 1):
            for pid in _also:
                os.kill(pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
