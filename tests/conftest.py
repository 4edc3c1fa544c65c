"""Shared fixtures. Prefect runs on its test harness: one ephemeral API for the whole session."""

from __future__ import annotations

import pytest

from govreports.flows.prefect_env import configure


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    configure()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def demo_site_url():
    """The bundled demo site, served on 127.0.0.1 for the whole session."""
    from govreports.flows.config import DATA_DIR
    from govreports.flows.demo_site import serve

    server, url = serve(DATA_DIR / "sample_site")
    yield url
    server.shutdown()
