"""The Functions host's queue triggers and Event Grid's blob events, played locally beside scripts/local_server.py
(where Core Tools cannot be installed), so that the archive job runs on Azurite as it runs in Azure:

- Event Grid: each blob created in tweets-in after the start becomes a BlobCreated event (Event Grid schema) on
  the archive-files queue. In Azure, the Event Grid subscription of infra/modules/archive.bicep does this.
- The host: every queue-triggered function of the app gets the messages of its queue as the host hands them
  over: Base64-decoded, with their dequeue count, up to host.json's batchSize at a time. A message is deleted
  when its function returns, made visible again after visibilityTimeout when it raises, and moved to
  QUEUE-poison once it has failed maxDequeueCount times.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.functions.decorators.queue import QueueTrigger
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from tweet_sentiment import archive

APP_ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("local_queues")


def _seconds(duration: str) -> float:
    hours, minutes, seconds = (float(part) for part in duration.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def host_options() -> dict[str, Any]:
    """host.json's queue settings and function timeout, with the host's defaults."""
    host = json.loads((APP_ROOT / "host.json").read_text(encoding="utf-8"))
    queues = host.get("extensions", {}).get("queues", {})
    return {
        "max_dequeue_count": int(queues.get("maxDequeueCount", 5)),
        "visibility_seconds": _seconds(queues.get("visibilityTimeout", "00:00:00")),
        "batch_size": int(queues.get("batchSize", 16)),
        "function_seconds": _seconds(host.get("functionTimeout", "00:05:00")),
    }


def _queue(connection_string: str, name: str) -> QueueClient:
    return QueueClient.from_connection_string(
        connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


class QueueHost:
    """Runs the app's queue-triggered `functions` on the queues of their connections (connection strings, by
    connection name, from `environ`), and plays Event Grid for the archive's inbox."""

    def __init__(self, functions: list[Any], environ: Mapping[str, str], poll_seconds: float = 0.2):
        self.options = host_options()
        self.poll_seconds = poll_seconds
        self.functions: list[tuple[QueueClient, Any]] = []
        self._connections: dict[str, str] = {}
        for function in functions:  # app.get_functions(), indexed once
            trigger = function.get_trigger()
            if isinstance(trigger, QueueTrigger):
                client = _queue(environ[trigger.connection], trigger.queue_name)
                self.functions.append((client, function.get_user_function()))
                self._connections[trigger.queue_name] = environ[trigger.connection]
        self.storage = archive.Storage.from_connection_string(environ[archive.CONNECTION])
        self.storage.create_all()
        self._seen = self._blobs_now()  # Event Grid announces blobs created from now on
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -------------------------------------------------------------- Event Grid

    def _blobs_now(self) -> set[tuple[str, str]]:
        return {(blob.name, blob.etag) for blob in self.storage.container(archive.INBOX).list_blobs()}

    def announce_new_blobs(self) -> int:
        blobs = self._blobs_now()
        for name, etag in sorted(blobs - self._seen):
            event = {
                "topic": "local",
                "subject": f"/blobServices/default/containers/{archive.INBOX}/blobs/{name}",
                "eventType": archive.BLOB_CREATED,
                "data": {"eTag": etag, "url": f"{archive.INBOX}/{name}"},
            }
            self.storage.enqueue(archive.FILES_QUEUE, event)
        announced = len(blobs - self._seen)
        self._seen = blobs
        return announced

    # -------------------------------------------------------------- the host

    def process_one(self, client: QueueClient, function: Any) -> bool:
        """Hand one message of the queue to its function, as the host does; False when the queue was empty."""
        received = client.receive_message(visibility_timeout=int(self.options["function_seconds"]))
        if received is None:
            return False
        message = QueueMessage(id=received.id, body=received.content, dequeue_count=received.dequeue_count)
        try:
            function(message)
        except Exception as error:
            logger.warning(
                "%s failed on message %s (attempt %d): %s",
                function.__name__,
                received.id,
                received.dequeue_count,
                error,
            )
            if received.dequeue_count >= self.options["max_dequeue_count"]:
                poison = _queue(self._connections[client.queue_name], client.queue_name + archive.POISON_SUFFIX)
                with contextlib.suppress(ResourceExistsError):
                    poison.create_queue()
                poison.send_message(received.content)
                client.delete_message(received)
            else:
                client.update_message(received, visibility_timeout=int(self.options["visibility_seconds"]))
            return True
        client.delete_message(received)
        return True

    def _serve(self, client: QueueClient, function: Any) -> None:
        while not self._stop.is_set():
            try:
                busy = self.process_one(client, function)
            except Exception:  # storage itself failing: log, and poll again
                logger.exception("polling %s failed", client.queue_name)
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)

    def _announce(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.announce_new_blobs()
            except Exception:
                logger.exception("listing %s failed", archive.INBOX)

    def start(self) -> QueueHost:
        self._threads = [threading.Thread(target=self._announce, daemon=True)]
        for client, function in self.functions:
            for _ in range(self.options["batch_size"]):
                self._threads.append(threading.Thread(target=self._serve, args=(client, function), daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
