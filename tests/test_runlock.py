"""One writer per warehouse: a kernel lock refuses a second run while the first lives, is free again
the moment its holder dies, and a run that finds the last holder died sweeps what it left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from govreports.flows.runlock import LOCK_NAME, LockHeld, RunLock, sweep
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
    with pytest.raises(LockHeld, match=f"pid {holder.pid}, started "):
        RunLock(tmp_path).acquire()


def test_the_cli_refuses_a_second_run_with_a_clear_message(tmp_path, holder):
    out = subprocess.run([*CLI, "--warehouse", str(tmp_path), "fetch",
                          "--sources", str(ROOT / "data" / "sources.csv"), "--quiet"],
                         capture_output=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    err = out.stderr.decode()
    assert "another govreports run" in err and f"pid {holder.pid}" in err and "Traceback" not in err


def test_a_killed_holders_lock_is_free_at_once_and_asks_for_the_whole_sweep(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    deep, top = _leftovers(tmp_path)
    with RunLock(tmp_path) as lock:
        assert lock.held and lock.needs_sweep
        assert f"pid {os.getpid()}," in (tmp_path / LOCK_NAME).read_text()
        assert sweep(tmp_path, deep=lock.needs_sweep) == 2
    assert not deep.exists() and not top.exists()
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly: the next run need not sweep
    with RunLock(tmp_path) as lock:
        assert not lock.needs_sweep


def test_one_process_cannot_take_the_lock_twice(tmp_path):
    with RunLock(tmp_path), pytest.raises(LockHeld):
        RunLock(tmp_path).acquire()  # flock: another open file description of the same file waits too


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
    with RunLock(tmp_path):
        pass
    deep, top = _leftovers(tmp_path)
    with RunLock(tmp_path) as lock:
        assert not lock.needs_sweep
        assert sweep(tmp_path, deep=lock.needs_sweep) == 1
    assert deep.exists() and not top.exists()


def test_a_run_that_lost_part_of_itself_leaves_the_sweep_to_the_next(tmp_path):
    with RunLock(tmp_path) as lock:
        lock.keep_for_sweep()  # a parse process died mid-write while the run went on
    deep, _ = _leftovers(tmp_path)
    with RunLock(tmp_path) as lock:
        assert lock.needs_sweep
        sweep(tmp_path, deep=lock.needs_sweep)
    assert not deep.exists()
    with RunLock(tmp_path) as lock:
        assert not lock.needs_sweep


RACER = ("import os, sys, time; from govreports.flows.runlock import LockHeld, RunLock\n"
         "go = sys.argv[2]\n"
         "while not os.path.exists(go): time.sleep(0.001)\n"
         "lock = RunLock(sys.argv[1])\n"
         "try:\n    lock.acquire()\nexcept LockHeld:\n    print('refused', flush=True)\n"
         "else:\n    print('held', flush=True); time.sleep(0.3); lock.release()\n")


def test_two_processes_taking_over_a_dead_runs_lock_at_once_one_wins_and_none_crashes(tmp_path):
    """The race a lock file with staleness rules lost (both held it, or the loser crashed): ten times, a
    dead run's lock, then two processes let go at the same instant."""
    for trial in range(10):
        root, go = tmp_path / str(trial), tmp_path / f"go{trial}"
        root.mkdir()
        (root / LOCK_NAME).write_text("pid 999999, started long ago\n")  # a holder that died
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(root), str(go)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        time.sleep(0.3)  # both are waiting for the go
        go.touch()
        results = [(p.communicate(timeout=60), p.returncode) for p in racers]
        assert sorted(out.decode().strip() for (out, _err), _rc in results) == ["held", "refused"]
        assert all(rc == 0 and not err for (_out, err), rc in results)


KILLED_IN_A_BUILD = ("import os, signal, sys, duckdb; con = duckdb.connect(sys.argv[1]); "
                     "con.execute('CREATE TABLE t AS SELECT range AS i FROM range(1000)'); "
                     "os.kill(os.getpid(), signal.SIGKILL)")


def test_sweep_removes_the_write_ahead_log_of_a_database_killed_while_built(tmp_path):
    # The database is built under a hidden temporary name (load/warehouse.py); DuckDB keeps its
    # write-ahead log beside it, `<name>.wal`, which a kill leaves behind.
    tmp = tmp_path / ".govreports.duckdb.0123456789abcdef0123456789abcdef.tmp"
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_A_BUILD, str(tmp)], cwd=ROOT, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    wal = tmp.with_name(tmp.name + ".wal")
    assert wal.exists()
    (tmp_path / "govreports.duckdb.wal").write_bytes(b"")  # a live database's log is no leftover
    assert sweep(tmp_path) == 2
    assert not tmp.exists() and not wal.exists() and (tmp_path / "govreports.duckdb.wal").exists()
