"""Prefect settings for an offline, project-local run. Call `configure()` before importing prefect.

With no Prefect server configured, flows run on Prefect's ephemeral local API (a SQLite database
under PREFECT_HOME, started on demand): no network, no telemetry, and a start-up timeout long enough
for a fresh database on a slow machine. Settings already in the environment win, so a user can
point PREFECT_API_URL at a real server or change any of these.
"""

from __future__ import annotations

import os

from flows.config import REPO_ROOT

SETTINGS = {
    "PREFECT_HOME": str(REPO_ROOT / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def configure() -> None:
    for key, value in SETTINGS.items():
        os.environ.setdefault(key, value)
