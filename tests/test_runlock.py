"""One writer per warehouse: the lock refuses a second run, takes over a dead run's lock, and the
sweep removes what a killed run left."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govreports.flows.runlock import LOCK_NAME, SWEEP_MARK, LockHeld, RunLock, mark_for_sweep, needs_sweep, sweep
from tests import CLI

ROOT = Path(__file__).resolve().parent.parent
HOLDER = ("import sys, time; from govreports.flows.runlock import RunLock; lock = RunLock(sys.argv[1]); "
          "lock.acquire(); print('held', flush=True); time.sleep(60)")


@pytest.fixture()
def holder(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path, holder):
    with pytest.raises(LockHeld, match=f"pid {holder.pid}"):
        RunLock(tmp_path).acquire()


def test_the_cli_refuses_a_second_run_with_a_clear_message(tmp_path, holder):
    out = subprocess.run([*CLI, "--warehouse", str(tmp_path), "fetch",
                          "--sources", str(ROOT / "data" / "sources.csv"), "--quiet"],
                         capture_output=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    err = out.stderr.decode()
    assert "another govreports run" in err and "Traceback" not in err


def test_a_dead_runs_lock_is_taken_over(tmp_path, holder):
    holder.kill()
    holder.wait()
    with RunLock(tmp_path) as lock:
        assert lock.held
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_an_old_lock_from_another_host_is_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": time.time() - 90000}))
    with RunLock(tmp_path):
        pass
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": time.time()}))
    with pytest.raises(LockHeld, match="elsewhere"):
        RunLock(tmp_path).acquire()


def test_sweep_removes_leftovers_only(tmp_path):
    (tmp_path / "parquet" / "facts" / "year=2020" / "agency=a").mkdir(parents=True)
    part = tmp_path / "parquet" / "facts" / "year=2020" / "agency=a"
    (part / "part.parquet").write_bytes(b"x")
    (part / ".abc.tmp").write_bytes(b"half")
    (tmp_path / "raw" / "ab").mkdir(parents=True)
    (tmp_path / "raw" / "ab" / ".abcdef.x.tmp").write_bytes(b"half")
    (tmp_path / "parquet.reparse-1234abcd").mkdir()
    assert sweep(tmp_path) == 3
    assert (part / "part.parquet").exists()
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "parquet.reparse-1234abcd").exists()


def _leftovers(root: Path) -> tuple[Path, Path]:
    deep = root / "raw" / "ab" / "cd" / ".abcdef.x.tmp"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"half")
    (root / "parquet.old-1234abcd").mkdir()
    return deep, root / "parquet.old-1234abcd"


def test_after_a_clean_run_only_the_top_is_swept(tmp_path):
    deep, top = _leftovers(tmp_path)
    with RunLock(tmp_path) as lock:
        assert not lock.took_over and not needs_sweep(lock)
        assert sweep(tmp_path, deep=needs_sweep(lock)) == 1
    assert deep.exists() and not top.exists()


def test_a_taken_over_lock_asks_for_the_whole_sweep(tmp_path, holder):
    deep, top = _leftovers(tmp_path)
    holder.kill()
    holder.wait()
    with RunLock(tmp_path) as lock:
        assert lock.took_over and needs_sweep(lock)
        assert sweep(tmp_path, deep=needs_sweep(lock)) == 2
    assert not deep.exists() and not top.exists()


def test_a_marked_warehouse_is_swept_once(tmp_path):
    deep, _ = _leftovers(tmp_path)
    mark_for_sweep(tmp_path)
    with RunLock(tmp_path) as lock:
        assert needs_sweep(lock)
        sweep(tmp_path, deep=needs_sweep(lock))
    assert not deep.exists() and not (tmp_path / SWEEP_MARK).exists()
    with RunLock(tmp_path) as lock:
        assert not needs_sweep(lock)
