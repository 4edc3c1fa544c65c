"""Parse worker processes (flows/workers.py) on real pages, a real raw zone and a real lake."""

from __future__ import annotations

import os
import signal

import pytest

from govreports.extract.rawzone import RawZone
from govreports.flows import workers
from govreports.flows.steps import PageRef
from govreports.load.lake import Lake
from tests.loadhelp import page


def stored_refs(raw_root, n: int) -> list[PageRef]:
    raw = RawZone(str(raw_root))
    refs = []
    for i in range(n):
        sha, _ = raw.put(page(f"{i}号区民政局", 2021, "2021", 10 + i, 1))
        refs.append(PageRef(f"a{i}", f"http://127.0.0.1/a{i}/2021.html", sha, 2021, None))
    return refs


def test_the_count_of_processes_follows_the_stage_and_the_environment(monkeypatch):
    monkeypatch.delenv("GOVREPORTS_PARSE_PROCESSES", raising=False)
    assert workers.processes_for(workers.MIN_PAGES - 1) == 0
    assert workers.processes_for(workers.MIN_PAGES) == (os.cpu_count() or 1)
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "3")
    assert workers.processes_for(5) == 3 and workers.processes_for(0) == 0
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "1")
    assert workers.processes_for(10_000) == 0
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "two")
    with pytest.raises(ValueError, match="GOVREPORTS_PARSE_PROCESSES"):
        workers.processes_for(10)


def test_a_worker_killed_mid_run_leaves_the_batches_to_the_caller(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVREPORTS_PARSE_PROCESSES", "2")
    refs = stored_refs(tmp_path / "raw", 4)
    lake_root = str(tmp_path / "parquet")
    broken = workers.broken_pools()
    with workers.parse_pool(len(refs)) as pool:
        assert pool is not None
        first = workers.parse_and_load(str(tmp_path / "raw"), lake_root, refs[:2], {})
        for pid in list(pool._processes):  # what the OOM killer would do
            os.kill(pid, signal.SIGKILL)
        rest = workers.parse_and_load(str(tmp_path / "raw"), lake_root, refs[2:], {})
        assert workers._active is None  # the broken pool is dropped, not retried
    assert workers.broken_pools() == broken + 1  # counted once: the run then asks for a sweep
    assert first.parsed == 2 and rest.parsed == 2 and not first.failures + rest.failures
    assert Lake(lake_root).report_ids() == {ref.sha256[:16] for ref in refs}
