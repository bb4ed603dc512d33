"""Feedback and predictions together from 16 clients over HTTP on healthy Azurite (bounded: 16 x 8 rounds,
127.0.0.1 only): new feedback is almost never refused, and every feedback answered 202 is in storage. The
same run with figures (refused share, p99, rows against 202s) is `python -m scripts.load_test`."""

from __future__ import annotations

from azure.data.tables import TableClient

from scripts.load_test import run_load
from tests.conftest import LocalServer


def test_sixteen_clients_on_healthy_storage_lose_no_feedback(azurite):
    server = LocalServer()
    try:
        result = run_load(server.url, clients=16, rounds=8)
    finally:
        server.stop()
    assert result.errors == []  # no transport error, no 5xx but the documented 503
    assert result.refused <= 0.01 * result.sent  # the bar: at most 1% of new feedback refused
    table = TableClient.from_connection_string(azurite, table_name="feedback")
    stored = {row["RowKey"] for row in table.list_entities(select=["RowKey"])}
    assert set(result.acknowledged) <= stored  # every 202 is a row
