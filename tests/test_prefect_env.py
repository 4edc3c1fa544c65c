"""flows/prefect_env.py: the settings flow runs started here get, in a fresh process each (Prefect reads
its settings once, and the test session's own runs use the test harness's API)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("from govreports.flows.prefect_env import configure, local_runs; configure()\n"
         "from prefect.settings import get_current_settings\n"
         "with local_runs():\n"
         "    print(get_current_settings().flows.heartbeat_frequency)\n")


def heartbeat_frequency(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    out = subprocess.run([sys.executable, "-c", PROBE], env=clean | env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "None"),  # the ephemeral API: nothing watches heartbeats, and stopping them cost each run
    ({"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60"}, "60"),  # the user's choice wins
    ({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "180"),  # a server: Prefect's default stands
])
def test_local_runs_send_heartbeats_only_where_something_can_watch_them(tmp_path, env, expected):
    assert heartbeat_frequency(PREFECT_HOME=str(tmp_path), **env) == expected
