"""Shared fixtures. Prefect runs on its test harness: one ephemeral API for the whole session."""

from __future__ import annotations

import pytest

from flows.prefect_env import configure


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    configure()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
