"""Crash points for the crash-safety tests: `GOVREPORTS_FAULT=<point>:<n>` kills the process with
SIGKILL the n-th time it reaches <point> (fetch, parse, write, refresh). A real SIGKILL at a chosen
place is what a test of crash safety needs, and a kill from outside cannot aim that well.
Unset (always, outside those tests), a checkpoint costs one dictionary lookup."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

_counts: Counter[str] = Counter()
_lock = threading.Lock()


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
            os.kill(os.getpid(), signal.SIGKILL)
