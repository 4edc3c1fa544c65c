"""Worker processes for the parse-and-load stage.

Parsing is Python under the GIL: in threads, every batch shares one core. While a `parse_pool` is
open, `parse_and_load` sends each batch to one of a few worker processes (one per core by default,
`GOVREPORTS_PARSE_PROCESSES`; 0 or 1 keeps the work in the calling thread). By default a stage of fewer
than MIN_PAGES pages stays in the calling thread; a count set in the environment applies to any stage.
Batches write disjoint lake partitions, so the workers need no coordination, and only counts come back.

The workers start from a forkserver with the parser preloaded (forking the flow's own process, which
runs Prefect's threads, is unsafe), exit when the run's process ends, and are replaced
every BATCHES_PER_WORKER batches, so no heap grows for a whole backfill. A pool that breaks (a worker
killed from outside, or crashed by a page) is dropped and its batches run in the caller's thread.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from govreports.extract.sources import Source
from govreports.flows import faults, steps

GC_THRESHOLD = 20_000  # allocations between young collections (Python's default is 700)
MIN_PAGES = 200  # below this, starting the workers (about a second) costs more than they save
BATCHES_PER_WORKER = 40  # then the worker is replaced by a fresh one
_PRELOAD = ["govreports.flows.steps"]  # imported once in the forkserver: pandas, pyarrow, lxml and the parser

log = logging.getLogger(__name__)
_active: ProcessPoolExecutor | None = None
_lock = threading.Lock()
_broken = 0  # pools that broke in this process: a dead worker may have left a half-written file


def broken_pools() -> int:
    """How many pools broke in this process so far (compare before and after a stage)."""
    return _broken


def processes_for(pages: int) -> int:
    """Worker processes for a stage of `pages` pages: GOVREPORTS_PARSE_PROCESSES when set, else one per
    core for a stage of MIN_PAGES pages or more; 0 means the calling thread."""
    raw = os.environ.get("GOVREPORTS_PARSE_PROCESSES", "").strip()
    if not raw:
        return (os.cpu_count() or 1) if pages >= MIN_PAGES else 0
    try:
        n = int(raw)
    except ValueError as exc:
        raise ValueError(f"GOVREPORTS_PARSE_PROCESSES must be a whole number, not {raw!r}") from exc
    return n if n > 1 and pages else 0


def _watch(run_pid: int) -> None:
    """Exit when the run's process ends (killed, say). A worker's parent is the forkserver, which the
    workers themselves keep alive, and its task queue never reaches EOF: without this, a killed run
    would leave idle workers behind for good."""
    try:
        fd = os.pidfd_open(run_pid)  # Linux: readable once the process has ended
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while True:
            time.sleep(1.0)
            try:
                os.kill(run_pid, 0)
            except ProcessLookupError:
                break
    os._exit(1)


def tune_gc() -> None:
    """Collector settings for a parsing process. A page allocates tens of thousands of small objects,
    almost none of them in cycles, and each full collection walks every object alive (the parser's
    label tables, pandas, pyarrow): with the defaults the collector took a fifth of the parse time.
    What is alive now is frozen out of collections, and young ones run less often."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def _die_with(run_pid: int) -> None:
    """Worker start-up: never outlive the run, and let a crash test's kill take the run down too."""
    tune_gc()
    faults.also_kill(run_pid)
    threading.Thread(target=_watch, args=(run_pid,), name="watch-run", daemon=True).start()


def _work(raw_root: str, lake_root: str, refs: list[steps.PageRef], sources: dict[str, Source]) -> steps.LoadOutcome:
    return steps.parse_and_load(raw_root, lake_root, refs, sources)


@contextmanager
def parse_pool(pages: int) -> Iterator[ProcessPoolExecutor | None]:
    """Open worker processes for a stage of `pages` pages, when it is worth it; yields the pool or None."""
    global _active
    n = processes_for(pages)
    if n <= 1 or multiprocessing.current_process().daemon:
        yield None  # daemonic processes (a Dask worker) cannot have children
        return
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
    else:  # Windows: each worker imports the parser itself
        ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_die_with, initargs=(os.getpid(),),
                               max_tasks_per_child=BATCHES_PER_WORKER)
    with _lock:
        _active = pool
    try:
        yield pool
    finally:
        with _lock:
            _active = None
        pool.shutdown(wait=True, cancel_futures=True)
        _stop_forkserver()


def _stop_forkserver() -> None:
    """Its preloaded parser (~140 MB) would sit idle through the database rebuild that follows; the next
    pool starts a new one. Only a private method of multiprocessing does this, hence the care."""
    try:
        import multiprocessing.forkserver as forkserver
    except ImportError:  # no forkserver on this platform
        return
    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if callable(stop):
        try:
            stop()
        except OSError:
            pass


def parse_and_load(raw_root: str, lake_root: str, refs: Sequence[steps.PageRef],
                   sources: Mapping[str, Source]) -> steps.LoadOutcome:
    """steps.parse_and_load, in a worker process while a pool is open, else here."""
    global _active, _broken
    pool = _active
    if pool is not None:
        try:
            return pool.submit(_work, raw_root, lake_root, list(refs), steps.sources_for(refs, sources)).result()
        except BrokenProcessPool:
            log.warning("parse worker process died; parsing the rest of the run in this process")
            with _lock:
                if _active is pool:
                    _active = None
                    _broken += 1
    return steps.parse_and_load(raw_root, lake_root, refs, sources)
