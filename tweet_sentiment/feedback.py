"""Durable feedback: one entity per prediction in Azure Table Storage (Azurite locally and in tests).

The row key is the prediction id and a row is written once: a client that retries after a timeout finds its
own row (accepted again), a different feedback for the same prediction is refused. Feedback is acknowledged
only after the write succeeded.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

# Azurite's well-known development account (public, documented by Microsoft); table service on port 10002.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(
    host: str = "127.0.0.1", port: int = 10002, blob_port: int | None = None, queue_port: int | None = None
) -> str:
    """Azurite's connection string: its table service on `port`, and its blob and queue services when given."""
    endpoints = {"Table": port, "Blob": blob_port, "Queue": queue_port}
    return f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};" + "".join(
        f"{service}Endpoint=http://{host}:{number}/devstoreaccount1;"
        for service, number in endpoints.items()
        if number is not None
    )


class FeedbackUnavailable(RuntimeError):
    """The feedback may not be stored; the client should retry with the same prediction later."""


class FeedbackConflict(ValueError):
    """A different feedback was already stored for this prediction: feedback is written once."""


# What makes two feedbacks for one prediction the same: a client retry sends exactly these again.
CONTENT_FIELDS = ("text", "predicted_label", "correct", "expected_label", "expected_reason")
# How long a feedback waits for a free write slot before 503: long enough for healthy storage's writes (tens of
# milliseconds each) to drain a burst, short enough that a frozen account cannot hold request threads for long.
SLOT_WAIT_SECONDS = 1.0


class FeedbackStore:
    """One row per prediction, written once. Each storage call has a short timeout and at most
    `concurrent_writes` of them wait at a time, so a frozen storage account cannot take the worker's threads
    from predictions: the others are answered 503 at once.

    In Azure the store connects to `table_endpoint` with the app's managed identity (DefaultAzureCredential);
    a connection string is used only where one is given (Azurite locally and in tests)."""

    def __init__(
        self,
        connection_string: str | None,
        table_name: str,
        timeout_seconds: float = 2.0,
        concurrent_writes: int = 4,
        table_endpoint: str | None = None,
    ):
        self.table_name = table_name
        self._connection_string = connection_string
        self._endpoint = table_endpoint
        self._timeout = timeout_seconds
        self._client: TableClient | None = None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrent_writes)

    def _unreachable(self, error: Exception) -> FeedbackUnavailable:
        return FeedbackUnavailable(f"feedback table {self.table_name!r} is unreachable ({type(error).__name__})")

    def _connect(self) -> TableClient:
        options: dict[str, Any] = {
            "table_name": self.table_name,
            "retry_total": 0,
            "connection_timeout": self._timeout,
            "read_timeout": self._timeout,
        }
        try:
            if self._connection_string:
                return TableClient.from_connection_string(self._connection_string, **options)
            from azure.identity import DefaultAzureCredential  # only the identity path needs it

            # Managed identity in Azure; a developer's `az login` elsewhere. Token requests fail fast too.
            credential = DefaultAzureCredential(
                exclude_interactive_browser_credential=True, connection_timeout=self._timeout, retry_total=0
            )
            return TableClient(endpoint=str(self._endpoint), credential=credential, **options)
        except ValueError as error:
            raise FeedbackUnavailable(f"feedback storage setting is invalid ({error})") from error

    def _table(self) -> TableClient:
        if not self._connection_string and not self._endpoint:
            raise FeedbackUnavailable(
                "feedback storage is not configured: set FEEDBACK_TABLE_ENDPOINT (managed "
                "identity) or FEEDBACK_STORAGE_CONNECTION_STRING (Azurite, local runs)"
            )
        with self._lock:
            if self._client is None:
                client = self._connect()
                self._create_table(client)
                self._client = client
            return self._client

    def _create_table(self, client: TableClient) -> None:
        try:
            client.create_table()
        except ResourceExistsError:
            pass
        except AzureError as error:
            raise self._unreachable(error) from error

    def save(self, entity: dict[str, Any]) -> bool:
        """Store one feedback (`prediction_id` is the key). Returns True when written now, False when the same
        feedback was already stored (a client retry). Raises FeedbackConflict when a different feedback was
        stored for this prediction, FeedbackUnavailable when storage does not answer."""
        record = {
            "PartitionKey": entity["prediction_id"][:2],
            "RowKey": entity["prediction_id"],
            "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **{key: value for key, value in entity.items() if value is not None},
        }
        if not self._slots.acquire(timeout=SLOT_WAIT_SECONDS):
            raise FeedbackUnavailable("feedback storage is busy: too many writes are waiting for it")
        try:
            return self._create_once(record)
        except AzureError as error:  # a refused token (ClientAuthenticationError) included
            raise self._unreachable(error) from error
        finally:
            self._slots.release()

    def _create_once(self, record: dict[str, Any]) -> bool:
        table = self._table()
        try:
            table.create_entity(record)
            return True
        except ResourceExistsError:
            stored = table.get_entity(partition_key=record["PartitionKey"], row_key=record["RowKey"])
            if all(stored.get(field) == record.get(field) for field in CONTENT_FIELDS):
                return False
            raise FeedbackConflict("a different feedback was already recorded for this prediction") from None
        except ResourceNotFoundError:  # the table was deleted since: create it again, once
            self._create_table(table)
            table.create_entity(record)
            return True

    def all(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._table().list_entities()
        except AzureError as error:
            raise self._unreachable(error) from error
