"""What an operator sees (issue 16): a run's logs and its per-agency table artifact in Prefect, a run with
failed reports that still completes, a stage that fails the run in Prefect, `prefect deploy` from the
repository's prefect.yaml to a real server started here (whose UI `serve` links to), and user errors
caught before Prefect starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import pytest

from govreports.flows.config import DATA_DIR
from tests import CLI

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SOURCES = DATA_DIR / "sample_site" / "sources.csv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipeline(prefect_harness):
    from govreports.flows import pipeline

    return pipeline


def _api(state):
    from prefect.client.orchestration import get_client

    client = get_client(sync_client=True)
    return client, state.state_details.flow_run_id


def test_a_run_with_failed_reports_completes_with_its_failures_logged_and_in_a_table_per_agency(
        pipeline, demo_site_url, tmp_path):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    state = pipeline.nightly(sources_file=str(SAMPLE_SOURCES), warehouse=str(tmp_path / "wh"), site=demo_site_url,
                             allow_loopback=True, delay=0.0, timeout=5.0, return_state=True)
    assert state.is_completed(), state
    summary = pipeline.RunSummary(**state.result())
    assert summary.failed_reports > 0 and ("failed reports", summary.failed_reports) in summary.rows()
    assert f"failed reports{' ' * 22} {summary.failed_reports}" in summary.text()
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the run's logs go to the API in batches, in the background
    client, run_id = _api(state)
    with client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[run_id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    tables = {a.key: a for a in artifacts if a.type == "table"}
    rows = json.loads(tables["govreports-nightly-agencies"].data)
    assert {r["agency"] for r in rows} == {s.agency_id for s in pipeline._sources(str(SAMPLE_SOURCES), demo_site_url)}
    assert set(rows[0]) == {"agency", "discovered", "fetched", "changed", "failed", "reasons"}
    assert sum(r["discovered"] for r in rows) == summary.discovered
    assert sum(r["failed"] for r in rows) == summary.failed_reports + summary.fetch_failed
    failing = [r for r in rows if r["failed"]]
    assert failing and all(r["reasons"] for r in failing)
    assert any("no text layer" in r["reasons"] for r in failing)
    # The run's logs in Prefect (what the UI shows) say at INFO what each stage did, ours included.
    said = [(log.level, log.name, log.message) for log in logs]
    assert any(level == 20 and name == "govreports.flows.pipeline" and "discovered" in msg for level, name, msg in said)
    assert any(level == 20 and "parsed and loaded" in msg for level, _, msg in said)
    assert any(level == 20 and "database rebuilt" in msg for level, _, msg in said)


def test_a_stage_that_fails_wholesale_fails_the_run_in_prefect(pipeline, tmp_path):
    closed = f"http://127.0.0.1:{_free_port()}"
    state = pipeline.nightly(sources_file=str(SAMPLE_SOURCES), warehouse=str(tmp_path / "wh"), site=closed,
                             allow_loopback=True, delay=0.0, timeout=2.0, return_state=True)
    assert state.is_failed(), state
    client, run_id = _api(state)
    with client:
        assert client.read_flow_run(run_id).state.type.value == "FAILED"
    with pytest.raises(pipeline.StageFailed, match="every agency failed to fetch"):
        state.result()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Prefect server on 127.0.0.1, started as `serve` starts it, with a home of its own."""
    from govreports.flows.schedule import start_server

    home = tmp_path_factory.mktemp("prefect-server")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    with patch.dict(os.environ, {**clean, "PREFECT_HOME": str(home)}, clear=True):
        proc, api = start_server(_free_port())
    try:
        yield api, {**clean, "PREFECT_HOME": str(home), "PREFECT_API_URL": api}
    finally:
        proc.terminate()
        proc.wait(60)


def test_the_server_serve_starts_serves_the_ui_it_links_to(server):
    import httpx

    api, _ = server
    ui = api.removesuffix("/api")
    for page in ("/", "/deployments/deployment/00000000-0000-0000-0000-000000000000"):  # what serve's links open
        # As a browser asks: the UI's pages for HTML navigation (an API client gets 404 there).
        r = httpx.get(ui + page, headers={"Accept": "text/html"}, timeout=30, follow_redirects=True)
        assert r.status_code == 200 and r.text.lstrip().lower().startswith("<!doctype html>"), page


def test_prefect_deploy_deploys_the_nightly_flow_from_prefect_yaml(server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api, env = server
    for command in (("work-pool", "create", "govreports", "--type", "process"),
                    ("--no-prompt", "deploy", "--name", "govreports-nightly")):
        done = subprocess.run([sys.executable, "-m", "prefect", *command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("nightly/govreports-nightly")
    assert dep.entrypoint == "flows/pipeline.py:nightly" and dep.work_pool_name == "govreports"
    assert [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules] == [("0 2 * * *", "Asia/Shanghai")]
    assert dep.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
    assert "warehouse" in dep.parameter_openapi_schema["properties"]


@pytest.mark.parametrize(("args", "error"), [
    (("run", "nightly", "--sources", str(SAMPLE_SOURCES), "--site", "http://127.0.0.1:9", "--agency", "nobody"),
     "govreports run: unknown agency id(s): 'nobody'"),
    (("backfill", "--years", "2020", "--sources", "missing.csv"), "govreports backfill: "),
    (("serve", "--sources", str(SAMPLE_SOURCES), "--region", "火星"), "govreports serve: "),  # no --site
    (("serve", "--sources", str(SAMPLE_SOURCES), "--site", "http://127.0.0.1:9", "--region", "火星"),
     "govreports serve: no agency selected"),
])
def test_user_errors_are_one_line_before_prefect_starts(tmp_path, args, error):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVREPORTS_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = subprocess.run([*CLI, "--warehouse", str(tmp_path / "wh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(error), done.stderr
    assert not (tmp_path / "prefect").exists()  # Prefect never started
