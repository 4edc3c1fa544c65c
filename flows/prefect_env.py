"""Prefect settings for an offline, project-local run. Call `configure()` before importing prefect.

With no Prefect server configured, flows run on Prefect's ephemeral local API (a SQLite database
under PREFECT_HOME, started on demand): no network, no telemetry, and a start-up timeout long enough
for a fresh database on a slow machine. Settings already in the environment win, so a user can
point PREFECT_API_URL at a real server or change any of these.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from govreports.flows.config import HOME

SETTINGS = {
    "PREFECT_HOME": str(HOME / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_UI_ENABLED": "false",  # the ephemeral API's; `serve` turns it on for its own server
    # What a run did goes to Prefect at INFO (the UI's run logs, ours included); the terminal gets warnings
    # only, under the progress bars. Our threads outside a run (the crawl's) log nowhere in Prefect.
    "PREFECT_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "govreports",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def configure() -> None:
    for key, value in SETTINGS.items():
        os.environ.setdefault(key, value)
    # Prefect makes its home's last folder only, not its parents (~/.govreports on a first run).
    os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)
    level = os.environ["PREFECT_LOGGING_LEVEL"].upper()  # Prefect takes a name or a number, as logging does
    logging.getLogger("govreports").setLevel(int(level) if level.isdigit() else level)


@contextmanager
def local_runs() -> Iterator[None]:
    """Settings for flow runs started here (the CLI, the benchmarks): on the ephemeral API, no heartbeats.
    Only a server's automations read them, and stopping their thread delays the end of every run. With a
    server (PREFECT_API_URL), or the user's PREFECT_FLOWS_HEARTBEAT_FREQUENCY, Prefect's choice stands."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    no_heartbeats = {} if get_current_settings().api.url else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(set_defaults=no_heartbeats):
        yield
