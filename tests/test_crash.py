"""Crash safety: a nightly run killed with SIGKILL in each stage, then run again, ends with the same
warehouse as a run never interrupted: no raw page lost, no row duplicated, no half-written file.
Real subprocesses, a real SIGKILL (aimed with GOVREPORTS_FAULT, see flows/faults.py; its count is per
process, so in a parse process it kills that process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from govreports.flows.config import DATA_DIR
from govreports.load.lake import Lake
from tests import CLI

ROOT = Path(__file__).resolve().parent.parent
SOURCES = str(DATA_DIR / "sample_site" / "sources.csv")


@pytest.fixture(scope="module")
def site(demo_site_url):
    return demo_site_url


def nightly(warehouse: Path, site: str, prefect_home: Path, fault: str | None = None, processes: str = "0"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVREPORTS_"))}
    env["PREFECT_HOME"] = str(prefect_home)
    env["GOVREPORTS_PARSE_PROCESSES"] = processes  # the demo site is small: the default would parse in threads
    if fault:
        env["GOVREPORTS_FAULT"] = fault
    prefect_home.mkdir(parents=True, exist_ok=True)

    def no_workers_left(proc: subprocess.Popen) -> None:
        if processes != "0" and proc.returncode == -signal.SIGKILL:
            assert _left_behind(proc.pid) == [], "parse processes outlived the killed run"

    return run_in_own_session([*CLI, "--warehouse", str(warehouse), "run", "nightly",
                               "--sources", SOURCES, "--site", site, "--allow-loopback", "--delay", "0"],
                              env, prefect_home, 600, no_workers_left)


def run_in_own_session(args: list[str], env: dict, out_dir: Path, timeout: float,
                       check=lambda _proc: None) -> subprocess.CompletedProcess:
    """Run `args` in a session of its own, `check(proc)` once it has ended, then end whatever is left of
    the session. A run killed with SIGKILL leaves its ephemeral Prefect server (or, were they to survive,
    its parse processes) behind, holding any pipe it was given: output goes to files in `out_dir`."""
    out, err = out_dir / "stdout.txt", out_dir / "stderr.txt"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(args, stdout=o, stderr=e, cwd=ROOT, env=env, start_new_session=True)
    try:
        proc.wait(timeout)
        check(proc)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_bytes(), err.read_bytes())


def state(warehouse: Path) -> dict:
    lake = Lake(str(warehouse / "parquet"))
    out = {}
    for name in ("facts", "reports", "checks"):
        # When a run fetched and loaded differs between runs; everything else must be equal.
        df = lake.read(name).drop(columns=["loaded_at", "fetched_at"], errors="ignore").astype(str)
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    out["raw"] = sorted(p.name for p in (warehouse / "raw").rglob("*") if p.is_file())
    with duckdb.connect(str(warehouse / "govreports.duckdb"), read_only=True) as con:
        # A DECIMAL sum: a float sum's last bits depend on DuckDB's thread scheduling.
        sql = "SELECT count(*), sum(value::DECIMAL(38, 4)), count(DISTINCT report_id) FROM facts"
        out["db"] = con.execute(sql).fetchone()
    return out


def _left_behind(session: int, wait: float = 15.0) -> list[str]:
    """Multiprocessing children (parse processes) still alive in the run's session after `wait`."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError):
                continue
            if int(fields[3]) == session and fields[0] != "Z" and "multiprocessing" in cmd:
                alive.append(cmd[:120])
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference(site, tmp_path_factory):
    wh = tmp_path_factory.mktemp("reference")
    done = nightly(wh, site, tmp_path_factory.mktemp("prefect"))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return state(wh)


@pytest.mark.parametrize(("fault", "processes"), [
    ("fetch:5", "0"), ("parse:7", "0"), ("write:4", "0"), ("refresh:3", "0"),
    # Killed in a parse process: the pool breaks, the flow parses the rest in its own threads, where the
    # same fault (counted per process) kills the run too.
    ("parse:3", "2"), ("write:5", "2"),
])
def test_killed_then_rerun_equals_an_uninterrupted_run(site, reference, tmp_path, fault, processes):
    home = tmp_path / "prefect"
    killed = nightly(tmp_path / "wh", site, home, fault, processes)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    if processes != "0":
        assert b"a parse process died" in killed.stderr
    again = nightly(tmp_path / "wh", site, home, processes=processes)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    got = state(tmp_path / "wh")
    for name in ("facts", "reports", "checks"):
        pd.testing.assert_frame_equal(got[name], reference[name])
        assert not got[name].duplicated().any()
    assert got["raw"] == reference["raw"]  # no raw page lost
    assert got["db"] == reference["db"]
    leftovers = [p for p in (tmp_path / "wh").rglob("*") if p.name.endswith(".tmp") or ".reparse-" in p.name]
    assert leftovers == []
    assert (tmp_path / "wh" / ".govreports.lock").read_text() == ""  # released cleanly


KILLED_WITH_WORKERS = """
import os, signal, time
from govreports.flows import pipeline
from prefect import task
from prefect.task_runners import ProcessPoolTaskRunner

@task
def nap(seconds: float) -> None:
    time.sleep(seconds)

if __name__ == "__main__":
    with ProcessPoolTaskRunner(max_workers=2, initializer=pipeline._parse_process_start) as pool:
        [f.result() for f in [pool.submit(nap, {"seconds": 0.3}) for _ in range(4)]]  # both processes up
        print("workers up", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or an operator would
"""


def test_parse_processes_exit_when_the_run_is_killed_from_outside(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVREPORTS_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    script = tmp_path / "killed_with_workers.py"  # a file: the spawned processes import the main module
    script.write_text(KILLED_WITH_WORKERS)

    def check(proc: subprocess.Popen) -> None:
        out, err = (tmp_path / "stdout.txt").read_bytes(), (tmp_path / "stderr.txt").read_text()
        assert proc.returncode == -signal.SIGKILL and b"workers up" in out, err[-2000:]
        assert _left_behind(proc.pid) == [], "parse processes outlived the killed run"

    run_in_own_session([sys.executable, str(script)], env, tmp_path, 300, check)
