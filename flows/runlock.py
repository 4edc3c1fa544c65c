"""One writer at a time per warehouse: a lock file, with a rule for locks left by a dead run.

The lock is `<warehouse>/.govreports.lock`, created exclusively, holding the owner's pid, host and
start time. A second run refuses with a message naming the owner. A lock is stale, and taken over,
when its owner is a process of this host that no longer exists, or when it is older than
STALE_AFTER (an owner on another host cannot be checked). Holding the lock, a run may sweep what a
killed run left behind: hidden `*.tmp` files and half-built lake directories.

Finding stray `*.tmp` files means walking every file of the warehouse (0.6 s at 10,000 reports, and
growing with the files), so a run does it only when something was killed: the lock it took over was
stale, or the last run marked the warehouse (`mark_for_sweep`: one of its parse workers died).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

STALE_AFTER = 24 * 3600  # seconds
LOCK_NAME = ".govreports.lock"
SWEEP_MARK = ".govreports.sweep-needed"


class LockHeld(RuntimeError):
    """Another run holds the warehouse."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class RunLock:
    def __init__(self, root: str | os.PathLike) -> None:
        self.path = Path(root) / LOCK_NAME
        self.held = False
        self.took_over = False  # the lock was left by a run that is gone: its leftovers need a sweep

    def _stale(self, owner: dict) -> bool:
        if owner.get("host") == socket.gethostname() and not _alive(int(owner.get("pid", -1))):
            return True
        return time.time() - float(owner.get("started", 0)) > STALE_AFTER

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text(encoding="utf-8") or "{}")
                except (OSError, ValueError):
                    owner = {}  # being written this instant, or garbage: judged by its age below
                    if time.time() - self.path.stat().st_mtime < 60:
                        time.sleep(0.2)
                        continue
                if owner and not self._stale(owner):
                    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner.get("started", 0))))
                    raise LockHeld(f"another govreports run (pid {owner.get('pid')} on {owner.get('host')}, "
                                   f"started {started}) is writing this warehouse; wait for it to finish, or "
                                   f"remove {self.path} if that process is gone") from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                self.took_over = True
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return
        raise LockHeld(f"could not take the warehouse lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def mark_for_sweep(root: str | os.PathLike) -> None:
    """Ask the next run to sweep: something of this run died mid-write while the run went on."""
    (Path(root) / SWEEP_MARK).touch()


def needs_sweep(lock: RunLock) -> bool:
    """Whether the holder of `lock` should sweep the whole tree: a killed run may have left files."""
    return lock.took_over or (lock.path.parent / SWEEP_MARK).exists()


def sweep(root: str | os.PathLike, *, deep: bool = True) -> int:
    """Remove what a killed run left (call only while holding the lock). Returns how many. The
    half-built lake directories sit at the top and are always looked for; `deep` also walks the whole
    tree for hidden `*.tmp` files, and clears the sweep mark."""
    root = Path(root)
    removed = 0
    if not root.exists():
        return 0
    for leftover in list(root.glob("parquet.reparse-*")) + list(root.glob("parquet.old-*")):
        shutil.rmtree(leftover, ignore_errors=True)
        removed += 1
    if deep:
        for tmp in root.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        (root / SWEEP_MARK).unlink(missing_ok=True)
    return removed
