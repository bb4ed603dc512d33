"""Application Insights custom events (`prediction`, `feedback`) through azure-monitor-opentelemetry.

An event is a log record on the `tweet_sentiment.events` logger carrying `microsoft.custom_event.name`;
the exporter turns it into a row of `customEvents`. Export is asynchronous and batched: emitting never
blocks nor fails a request, and a telemetry outage costs events, never answers.
"""

from __future__ import annotations

import logging

from .settings import Settings
from .text import MENTION_PATTERN, URL_PATTERN  # the same patterns the text processing replaces

EVENTS_LOGGER = "tweet_sentiment.events"
_events = logging.getLogger(EVENTS_LOGGER)
_events.setLevel(logging.INFO)


def configure(settings: Settings) -> str:
    """Start the exporter when a connection string is set and the Functions worker has not done it already.
    Returns how telemetry is wired: "worker", "exporter" or "disabled"."""
    if settings.worker_configures_telemetry:
        return "worker"  # the Python worker configured azure-monitor-opentelemetry itself
    connection_string = settings.telemetry_connection_string
    if not connection_string:
        return "disabled"
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=connection_string, logger_name="tweet_sentiment", enable_live_metrics=False
    )
    return "exporter"


def mask(text: str) -> str:
    """The tweet without what identifies people: @handles and URLs."""
    return URL_PATTERN.sub("<url>", MENTION_PATTERN.sub("@user", text))


def emit(name: str, properties: dict[str, object]) -> None:
    """One custom event; every property is sent as a string (customEvents properties are strings)."""
    values = {key: _text(value) for key, value in properties.items() if value is not None}
    _events.info(name, extra={"microsoft.custom_event.name": name, **values})


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # what the alert's KQL compares with: correct == "false"
    return str(value)
