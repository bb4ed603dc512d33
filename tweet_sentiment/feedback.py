"""Durable feedback: one entity per prediction in Azure Table Storage (Azurite locally and in tests).

The row key is the prediction id, so a client that retries after a timeout writes the same row again
instead of a duplicate. Feedback is acknowledged only after the write succeeded.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Iterator

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables import TableClient, UpdateMode

# Azurite's well-known development account (public, documented by Microsoft); table service on port 10002.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(host: str = "127.0.0.1", port: int = 10002) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"TableEndpoint=http://{host}:{port}/devstoreaccount1;")


class FeedbackUnavailable(RuntimeError):
    """The feedback could not be stored; the client should retry later."""


class FeedbackStore:
    def __init__(self, connection_string: str | None, table_name: str, timeout_seconds: float = 5.0):
        self.table_name = table_name
        self._connection_string = connection_string
        self._timeout = timeout_seconds
        self._client: TableClient | None = None
        self._lock = threading.Lock()

    def _table(self) -> TableClient:
        if not self._connection_string:
            raise FeedbackUnavailable("feedback storage is not configured: set FEEDBACK_STORAGE_CONNECTION_STRING "
                                      "or AzureWebJobsStorage to a storage account connection string")
        with self._lock:
            if self._client is None:
                try:
                    client = TableClient.from_connection_string(
                        self._connection_string, table_name=self.table_name, retry_total=1,
                        connection_timeout=self._timeout, read_timeout=self._timeout)
                except ValueError as error:
                    raise FeedbackUnavailable(f"feedback storage connection string is invalid ({error})") from error
                try:
                    client.create_table()
                except ResourceExistsError:
                    pass
                except AzureError as error:
                    raise FeedbackUnavailable(f"feedback table {self.table_name!r} is unreachable "
                                              f"({type(error).__name__})") from error
                self._client = client
            return self._client

    def save(self, entity: dict[str, Any]) -> None:
        """Store one feedback (`prediction_id` is the key); raises FeedbackUnavailable."""
        record = {"PartitionKey": entity["prediction_id"][:2], "RowKey": entity["prediction_id"],
                  "received_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  **{key: value for key, value in entity.items() if value is not None}}
        try:
            self._table().upsert_entity(record, mode=UpdateMode.REPLACE)
        except AzureError as error:
            raise FeedbackUnavailable(f"feedback table {self.table_name!r} is unreachable "
                                      f"({type(error).__name__})") from error

    def all(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._table().list_entities()
        except AzureError as error:
            raise FeedbackUnavailable(f"feedback table {self.table_name!r} is unreachable "
                                      f"({type(error).__name__})") from error
