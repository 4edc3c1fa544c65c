"""`govreports` runs as users start them, in real subprocesses: the README's main command (`make demo`
runs `govreports demo`: the demo site served on 127.0.0.1, the nightly flow against it, the comparison
and its chart; run again, nothing changed), a run that cannot reach any source, and a run started while
another holds the warehouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import CLI

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SOURCES = ROOT / "data" / "sample_site" / "sources.csv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(warehouse: Path, prefect_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVREPORTS_"))}
    env["PREFECT_HOME"] = str(prefect_home)
    return subprocess.run([*CLI, "--warehouse", str(warehouse), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, start_new_session=True)


def _demo(warehouse: Path, port: int, prefect_home: Path, *more: str) -> subprocess.CompletedProcess:
    return _cli(warehouse, prefect_home, "demo", "--port", str(port), *more)


def test_demo_runs_the_nightly_then_finds_nothing_changed(tmp_path: Path) -> None:
    warehouse, port = tmp_path / "wh", _free_port()
    first = _demo(warehouse, port, tmp_path / "prefect")
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"demo site (sample data) at http://127.0.0.1:{port}" in first.stdout
    assert "nightly: 43 changed" in first.stdout
    # The comparison: 宁波市's districts, the seed's 鄞州区 falling most (23285 in 2019 to 9620 in 2024).
    table = first.stdout.split("largest declines first:", 1)[1]
    rows = [line for line in table.splitlines() if "交通运输局" in line]
    assert len(rows) == 5 and rows[0].startswith("鄞州区交通运输局") and "-58.7" in rows[0]
    # Under it, coverage: every district reported every year, so no gap hides in the table.
    assert "missing reports (no report found, or none readable; not a decline): 2019 none of 5," in first.stdout
    # Progress bars on standard error (printed once at the end, as it is not a terminal here).
    bars = {line.split()[0]: line.split()[2] for line in first.stderr.splitlines() if "━" in line}
    assert bars == {"fetch": "7/7", "parse": "43/43", "refresh": "1/1"}
    chart = warehouse / "licensing.png"
    assert f"chart: {chart}" in first.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Last, the browsable site of the warehouse, with the font its Chinese text needs.
    assert first.stdout.rstrip().endswith(f"site: {warehouse / 'site' / 'index.html'}")
    assert (warehouse / "site" / "cjk.otf").stat().st_size > 1000

    second = _demo(warehouse, port, tmp_path / "prefect", "--quiet")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "━" not in second.stderr
    assert "nightly: 0 changed" in second.stdout
    assert "鄞州区交通运输局" in second.stdout

    # reparse with the registry (a path, as typed): the warehouse option may come after the command too.
    reparse = _cli(tmp_path / "elsewhere", tmp_path / "prefect", "reparse", "--sources", str(SAMPLE_SOURCES),
                   "--site", f"http://127.0.0.1:{port}", "--quiet", "--warehouse", str(warehouse))
    assert reparse.returncode == 0, reparse.stderr[-2000:]
    assert not (tmp_path / "elsewhere").exists()
    assert "Traceback" not in reparse.stderr


def test_a_run_that_reaches_no_source_exits_1_with_its_reason(tmp_path: Path) -> None:
    sources = SAMPLE_SOURCES
    closed = f"http://127.0.0.1:{_free_port()}"  # nobody listens there
    run = _cli(tmp_path / "wh", tmp_path / "prefect", "run", "nightly", "--sources", str(sources), "--site", closed,
               "--allow-loopback", "--delay", "0", "--timeout", "2")
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("govreports nightly: every agency failed to fetch: ")
    assert "Connection refused" in last
    assert not (tmp_path / "wh" / "govreports.duckdb").exists()


def test_demo_site_serves_the_sample_site_until_interrupted(tmp_path: Path) -> None:
    import signal

    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVREPORTS_"))}
    # Ctrl-C as a terminal delivers it: a test run started in the background (`cmd &`) inherits SIGINT
    # ignored, and Python then leaves it ignored in the child too.
    ctrl_c = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "sys.argv = ['govreports', 'demo-site', '--port', sys.argv[1]]; "
              "runpy.run_module('govreports.flows.cli', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", ctrl_c, str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"Demo site (sample data) at http://127.0.0.1:{port}/"), first
        r = httpx.get(f"http://127.0.0.1:{port}/330212-jtj/ndbg/index.html", timeout=10)
        assert r.status_code == 200 and "政府信息公开" in r.text
        assert r.headers["content-type"] == "text/html"  # no charset, as agency sites send it
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


RUNS = {"nightly": ("run", "nightly", "--sources", str(SAMPLE_SOURCES), "--allow-loopback", "--delay", "0"),
        "backfill": ("backfill", "--years", "2020", "--sources", str(SAMPLE_SOURCES), "--allow-loopback"),
        "reparse": ("reparse",)}


@pytest.mark.parametrize("name", RUNS)
def test_a_second_run_says_in_one_line_who_holds_the_warehouse(tmp_path: Path, name: str) -> None:
    from govreports.flows.runlock import LOCK_NAME, RunLock

    warehouse = tmp_path / "wh"
    closed = f"http://127.0.0.1:{_free_port()}"  # never asked: the run stops before any request
    more = ("--site", closed) if name != "reparse" else ()
    with RunLock(warehouse):  # the first run, in this process: another process cannot take the lock
        held = (warehouse / LOCK_NAME).read_text()
        second = _cli(warehouse, tmp_path / "prefect", *RUNS[name], *more, "--quiet")
        assert second.returncode == 1
        assert second.stderr.splitlines() == [
            f"govreports {name}: another govreports run ({held.strip()}) is writing this warehouse; "
            "wait for it to finish"]
        assert (warehouse / LOCK_NAME).read_text() == held  # the holder's mark untouched
    assert sorted(p.name for p in warehouse.iterdir()) == [LOCK_NAME]  # nothing else written
    assert not (tmp_path / "prefect").exists()  # Prefect never started


def test_a_dead_runs_leftovers_are_still_swept_after_the_lock_check(tmp_path: Path) -> None:
    # The check before Prefect takes and releases the lock: it must leave the dead run's mark for the flow.
    from govreports.flows.runlock import LOCK_NAME

    warehouse = tmp_path / "wh"
    leftover = warehouse / "raw" / "ab" / ".abcdef.html.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a page")
    (warehouse / LOCK_NAME).write_text("pid 1, started 2024-01-01 02:00:00\n")  # released by no one: killed
    done = _cli(warehouse, tmp_path / "prefect", "reparse", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not leftover.exists()
    assert (warehouse / LOCK_NAME).read_text() == ""
