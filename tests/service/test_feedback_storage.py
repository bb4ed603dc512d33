"""Feedback stored in Table Storage (Azurite) through the functions in process, and the faults around it:
storage down, frozen or losing its table, the model damaged in each way. Nothing answers 500 and every
feedback acknowledged (202) is found in storage."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import azure.functions as func
import pytest
from azure.data.tables import TableClient, TableServiceClient

import function_app
from tests.conftest import (
    NEGATIVE_TWEET,
    body_of,
    copy_shipped_model,
    feedback_on,
    feedback_payload,
    get,
    post,
    predict_in_process,
)
from tweet_sentiment.feedback import FeedbackStore
from tweet_sentiment.manifest import Manifest, sha256_of
from tweet_sentiment.model import SentimentModel
from tweet_sentiment.service import ModelHolder
from tweet_sentiment.settings import Settings

ACKNOWLEDGED: list[str] = []  # every prediction id answered 202 in this module: each must be in storage


def stored_feedback(connection_string: str, prediction_id: str) -> dict:
    table = TableClient.from_connection_string(connection_string, table_name="feedback")
    return table.get_entity(partition_key=prediction_id[:2], row_key=prediction_id)


def test_feedback_is_stored_in_table_storage(http_functions, feedback_storage):
    payload = feedback_payload()
    response = post(http_functions["feedback"], payload)
    assert response.status_code == 202
    assert body_of(response) == {"status": "accepted", "feedback_id": payload["prediction_id"]}
    entity = stored_feedback(feedback_storage, payload["prediction_id"])
    assert (entity["text"], entity["predicted_label"], entity["correct"], entity["expected_label"]) == (
        NEGATIVE_TWEET,
        "positive",
        False,
        "negative",
    )


def test_feedback_is_written_once_and_a_retry_is_safe(http_functions, feedback_storage):
    payload = feedback_payload()
    assert post(http_functions["feedback"], payload).status_code == 202
    assert post(http_functions["feedback"], payload).status_code == 202  # a client retry after a timeout
    other = {**payload, "expected_label": "neutral"}  # same token: only the claim about the right label changes
    response = post(http_functions["feedback"], other)
    assert response.status_code == 409
    assert "already recorded" in body_of(response)["error"]
    table = TableClient.from_connection_string(feedback_storage, table_name="feedback")
    rows = list(table.query_entities("RowKey eq @id", parameters={"id": payload["prediction_id"]}))
    assert [row["expected_label"] for row in rows] == ["negative"]
    assert rows[0]["model_version"] == "7" and rows[0]["signing_key_id"] == function_app.signer.key_id


def test_feedback_when_right_needs_no_expected_label(http_functions, feedback_storage):
    payload = feedback_payload(predicted_label="negative", correct=True, expected_label=...)
    assert post(http_functions["feedback"], payload).status_code == 202


def test_feedback_is_accepted_while_the_model_is_down(http_functions, broken_model, feedback_storage):
    assert post(http_functions["predict"], {"text": NEGATIVE_TWEET}).status_code == 503
    assert send_feedback(http_functions, feedback_payload()).status_code == 202


def send_feedback(http_functions, payload) -> func.HttpResponse:
    response = post(http_functions["feedback"], payload)
    if response.status_code == 202:
        ACKNOWLEDGED.append(payload["prediction_id"])
    return response


# --- Feedback that does not come from a prediction -------------------------------------------------------------


def test_genuine_feedback_from_a_prediction_is_accepted(http_functions, feedback_storage):
    answer = predict_in_process(http_functions, NEGATIVE_TWEET)
    payload = feedback_on(answer, NEGATIVE_TWEET, correct=True)
    assert send_feedback(http_functions, payload).status_code == 202
    assert send_feedback(http_functions, payload).status_code == 202  # a client retry


def test_another_client_cannot_overwrite_feedback(http_functions, feedback_storage):
    answer = predict_in_process(http_functions, NEGATIVE_TWEET)
    genuine = feedback_on(answer, NEGATIVE_TWEET, correct=True)
    other_label = next(label for label in answer["labels"] if label != answer["label"])
    # Another client reusing this prediction's token to replace its feedback.
    assert send_feedback(http_functions, genuine).status_code == 202
    overwrite = {**genuine, "correct": False, "expected_label": other_label}
    assert send_feedback(http_functions, overwrite).status_code == 409


def _damage(manifest_path, how: str) -> None:
    values = json.loads(manifest_path.read_text())
    folder = manifest_path.parent
    if how == "garbage tokenizer":
        tokenizer = folder / values["assets"]["tokenizer"]["file"]
        tokenizer.write_text('{"model": "not a tokenizer"}')
        values["assets"]["tokenizer"]["sha256"] = sha256_of(tokenizer)
    elif how == "sequence length as text":
        values["sequence_length"] = "64"
    elif how == "two labels on a three-class graph":
        values["labels"] = ["negative", "positive"]
    elif how == "truncated graph":
        graph = folder / values["onnx_file"]
        graph.write_bytes(graph.read_bytes()[:1000])
        values["onnx_sha256"] = sha256_of(graph)
    elif how == "manifest not an object":
        values = ["not", "a", "manifest"]
    manifest_path.write_text(json.dumps(values))


@pytest.mark.parametrize(
    "how",
    [
        "garbage tokenizer",
        "sequence length as text",
        "two labels on a three-class graph",
        "truncated graph",
        "manifest not an object",
    ],
)
def test_damaged_model_is_a_503_with_back_off_and_the_rest_keeps_working(
    http_functions, feedback_storage, monkeypatch, tmp_path, how, caplog
):
    manifest_path = copy_shipped_model(tmp_path)
    if Manifest.read(manifest_path).input_kind != "wordpiece" and how == "garbage tokenizer":
        pytest.skip("the shipped champion has no tokenizer")
    _damage(manifest_path, how)
    loads = []
    real_load = SentimentModel.load
    monkeypatch.setattr(SentimentModel, "load", lambda *args: loads.append(1) or real_load(*args))
    monkeypatch.setattr(function_app, "model_holder", ModelHolder(Settings(model_path=manifest_path)))

    for _ in range(3):
        response = post(http_functions["predict"], {"text": NEGATIVE_TWEET})
        assert response.status_code == 503 and response.headers["Retry-After"] == "30"
        assert str(tmp_path) not in body_of(response)["error"]
    assert len(loads) == 1  # the next attempt waits for the back-off, not the next request
    assert get(http_functions["health"]).status_code == 503
    assert get(http_functions["openapi_document"]).status_code == 200
    assert send_feedback(http_functions, feedback_payload()).status_code == 202
    assert str(manifest_path.parent) in caplog.text  # operators get the path and reason in the log


# --- Storage faults --------------------------------------------------------------------------------------------


class FrozenStorage:
    """A TCP endpoint that accepts connections and never answers, like a storage account that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for held in self.held:
            held.close()
        self.sock.close()


def test_frozen_storage_answers_503_and_cannot_take_every_thread(http_functions, monkeypatch):
    from tweet_sentiment.feedback import azurite_connection_string

    frozen = FrozenStorage()
    store = FeedbackStore(
        azurite_connection_string(port=frozen.port), "feedback", timeout_seconds=1, concurrent_writes=2
    )
    monkeypatch.setattr(function_app, "feedback_store", store)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda _: send_feedback(http_functions, feedback_payload()), range(16)))
        messages = [body_of(answer)["error"] for answer in answers]
        assert {answer.status_code for answer in answers} == {503}
        assert all("retry in 30 seconds with the same prediction_id" in message for message in messages)
        # At most two requests waited on the frozen storage; the others were told at once.
        assert len(frozen.held) <= 2 * 2  # each waiting write: one connection (and at most one reconnection)
        assert post(http_functions["predict"], {"text": NEGATIVE_TWEET}).status_code == 200
    finally:
        frozen.close()


def test_a_deleted_table_is_created_again(http_functions, azurite, monkeypatch):
    table_name = "feedback" + uuid.uuid4().hex[:8]
    store = FeedbackStore(azurite, table_name)
    monkeypatch.setattr(function_app, "feedback_store", store)
    assert post(http_functions["feedback"], feedback_payload()).status_code == 202
    TableServiceClient.from_connection_string(azurite).delete_table(table_name)
    payload = feedback_payload()
    assert send_feedback(http_functions, payload).status_code == 202
    table = TableClient.from_connection_string(azurite, table_name=table_name)
    assert table.get_entity(payload["prediction_id"][:2], payload["prediction_id"])["text"] == NEGATIVE_TWEET
    ACKNOWLEDGED.remove(payload["prediction_id"])  # checked here: it lives in a table of its own


def test_nothing_acknowledged_was_lost(azurite):
    """Runs last in this module: every feedback answered 202 above is in storage."""
    table = TableClient.from_connection_string(azurite, table_name="feedback")
    stored = {row["RowKey"] for row in table.list_entities(select=["RowKey"])}
    assert ACKNOWLEDGED and set(ACKNOWLEDGED) - stored == set()
