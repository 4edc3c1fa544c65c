"""`govreports serve`: the nightly flow on a real schedule.

Prefect's `serve` does not schedule runs on the ephemeral API, so this starts a Prefect server on
127.0.0.1 (or uses the one PREFECT_API_URL names) and serves the nightly flow with a cron schedule
until stopped. The alternative without a server is system cron running `govreports run nightly`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress

import httpx

from govreports.flows.prefect_env import configure

DEPLOYMENT = "govreports-nightly"


def _own_session() -> None:
    """In the server's process before it starts: a session of its own, so that a Ctrl-C at the terminal stops
    serve's runner first (its flow-run processes send their last logs to the server as they exit) and then
    serve stops the server; and, on Linux, a SIGTERM when serve dies, however it dies."""
    os.setsid()
    with suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_server(port: int, timeout: float = 180.0) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on 127.0.0.1:port, with its UI (shipped in the prefect package), once its API
    answers its health check: the process and the API's URL."""
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_SERVER_UI_ENABLED": "true"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_own_session)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Prefect API at {api_url} after {timeout:.0f} s")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    return proc, api_url
            time.sleep(0.5)
        raise RuntimeError(f"the Prefect server exited with status {proc.returncode}")
    except BaseException:  # Ctrl-C too: never leave the server behind
        proc.terminate()
        raise


def serve(cron: str, timezone: str, port: int, flow_kwargs: dict) -> None:
    """Serve the nightly flow on `cron` (in `timezone`) until interrupted."""
    configure()
    proc = None
    if not os.environ.get("PREFECT_API_URL"):
        proc, api_url = start_server(port)
        os.environ["PREFECT_API_URL"] = api_url
        print(f"Prefect server (and its UI) on {api_url.removesuffix('/api')}; set PREFECT_API_URL to use your "
              "own server", flush=True)
    try:
        from prefect.schedules import Cron

        from govreports.flows.pipeline import nightly

        parameters = {k: v for k, v in flow_kwargs.items() if v is not None}
        nightly.serve(name=DEPLOYMENT, schedule=Cron(cron, timezone=timezone), parameters=parameters,
                      print_starting_message=True)
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
