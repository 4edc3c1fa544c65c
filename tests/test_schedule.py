"""`govreports serve` for real: a Prefect server on 127.0.0.1, the nightly deployment with its cron
schedule, and a triggered run that completes against the demo site."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from govreports.flows.config import DATA_DIR
from tests import CLI

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def served(tmp_path):
    from govreports.flows.demo_site import serve

    site, site_url = serve(DATA_DIR / "sample_site")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    proc = subprocess.Popen(
        [*CLI, "--warehouse", str(tmp_path / "wh"), "serve", "--port", str(port),
         "--cron", "30 3 * * *", "--sources", str(DATA_DIR / "sample_site" / "sources.csv"), "--site", site_url,
         "--allow-loopback", "--delay", "0"],
        cwd=ROOT, env=env, stdout=(tmp_path / "serve.out").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/api", tmp_path / "wh", tmp_path / "serve.out"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        site.shutdown()


def test_serve_schedules_the_nightly_flow_and_a_triggered_run_completes(served):
    api, warehouse, printed = served
    client = httpx.Client(base_url=api, timeout=10)

    def deployment():
        try:
            found = client.post("/deployments/filter", json={"deployments": {"name": {"any_": ["govreports-nightly"]}}})
        except httpx.HTTPError:
            return None
        return found.json()[0] if found.status_code == 200 and found.json() else None

    dep = wait_for(deployment, 240, "the served deployment")
    crons = [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in dep["schedules"]]
    assert crons == [("30 3 * * *", "Asia/Shanghai")]
    assert dep["parameters"]["allow_loopback"] is True

    run = client.post(f"/deployments/{dep['id']}/create_flow_run", json={}).json()

    def finished():
        state = client.get(f"/flow_runs/{run['id']}").json()["state"]
        return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    state = wait_for(finished, 240, "the triggered run")
    assert state["type"] == "COMPLETED", state
    assert (warehouse / "govreports.duckdb").exists()

    # serve links to the deployment in the UI of the server it started: a browser gets the page there.
    ui = api.removesuffix("/api")
    link = f"{ui}/deployments/deployment/{dep['id']}"
    page = httpx.get(link, headers={"Accept": "text/html"}, timeout=30, follow_redirects=True)
    assert page.status_code == 200 and page.text.lstrip().lower().startswith("<!doctype html>")
    out = printed.read_text()
    assert f"Prefect server (and its UI) on {ui};" in out and link in "".join(out.split()), out[-2000:]
