"""One writer at a time per warehouse: a kernel lock (`fcntl.flock`) on `<warehouse>/.govreports.lock`,
released by the kernel however its holder ends (no staleness rules).

The holder writes its pid and start time into the file (for a second run's message) and empties it on a
clean release: a file found not empty means the last holder died (or `keep_for_sweep`), and the run
sweeps the hidden `*.tmp` files it left. The file itself stays: removing it would let a run that opened
it before the removal and one that creates it anew hold two different locks.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path

LOCK_NAME = ".govreports.lock"


class LockHeld(RuntimeError):
    """Another run holds the warehouse."""


class RunLock:
    def __init__(self, root: str | os.PathLike) -> None:
        self.path = Path(root) / LOCK_NAME
        self.held = False
        self.needs_sweep = False  # the last holder did not release cleanly: its leftovers need a sweep
        self._clean = True
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise LockHeld(f"another govreports run ({holder}) is writing this warehouse; "
                           f"wait for it to finish") from None
        self.needs_sweep = os.fstat(fd).st_size > 0
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd, self.held, self._clean = fd, True, True

    def keep_for_sweep(self) -> None:
        """Leave the file as a dead run would: part of this run died mid-write while the run went on."""
        self._clean = False

    def release(self) -> None:
        if self._fd is None:
            return
        if self._clean:
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the only descriptor releases the flock
        self._fd, self.held = None, False

    def __enter__(self) -> RunLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def sweep(root: str | os.PathLike, *, deep: bool = True) -> int:
    """Remove what a killed run left (holding the lock); returns how many. Half-built lake directories
    (at the top) always; with `deep`, hidden `*.tmp` files anywhere in the tree, and the write-ahead log
    (`*.tmp.wal`) of a database killed while it was being built."""
    root = Path(root)
    removed = 0
    if not root.exists():
        return 0
    for leftover in list(root.glob("parquet.reparse-*")) + list(root.glob("parquet.old-*")):
        shutil.rmtree(leftover, ignore_errors=True)
        removed += 1
    if deep:
        for tmp in [*root.rglob(".*.tmp"), *root.rglob(".*.tmp.wal")]:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
