"""The same functions over real HTTP: the local server (scripts/local_server.py) on 127.0.0.1."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from tests.conftest import NEGATIVE_TWEET, LocalServer, feedback_on


@pytest.fixture(scope="module")
def server(azurite):
    running = LocalServer()
    yield running
    running.stop()


def test_readme_curl_example_answers_negative(server):
    response = httpx.post(f"{server.url}/api/predict", content=f'{{"text":"{NEGATIVE_TWEET}"}}')
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["label"] == "negative"
    assert body["scores"]["negative"] > 0.5
    assert body["model"]["name"] == "tweet-sentiment"
    uuid.UUID(body["prediction_id"])


def test_prediction_then_feedback(server):
    prediction = httpx.post(f"{server.url}/api/predict", json={"text": "@united thanks for nothing"}).json()
    right = prediction["label"] == "negative"
    feedback = httpx.post(f"{server.url}/api/feedback", json=feedback_on(
        prediction, "@united thanks for nothing", correct=right, expected_label=None if right else "negative"))
    assert feedback.status_code == 202
    assert feedback.json()["status"] == "accepted"


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/api/predict", b"{", 400, "must be a JSON object"),
    ("POST", "/api/predict", b'{"text": ""}', 400, "must not be empty"),
    ("POST", "/api/feedback", b'{"prediction_id": "x"}', 400, "must be the UUID"),
    ("GET", "/api/predict", b"", 405, "Method Not Allowed"),
    ("GET", "/api/nothing", b"", 404, "Not Found"),
])
def test_errors_are_json(server, method, path, body, status, message):
    response = httpx.request(method, f"{server.url}{path}", content=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_health(server):
    response = httpx.get(f"{server.url}/api/health")
    assert response.status_code == 200
    assert response.json()["model"]["labels"] == ["negative", "neutral", "positive"]


def test_server_without_a_model_answers_503_and_stays_up(tmp_path, azurite):
    running = LocalServer(env={**os.environ, "SENTIMENT_MODEL_PATH": str(tmp_path / "missing.json")})
    try:
        health = httpx.get(f"{running.url}/api/health")
        predicted = httpx.post(f"{running.url}/api/predict", json={"text": NEGATIVE_TWEET})
        assert health.status_code == 503 and "model unavailable" in health.json()["error"]
        assert str(tmp_path) not in health.text and str(tmp_path) not in predicted.text
        assert "missing.json not found" in running.stop()  # the reason is in the server's log
        assert predicted.status_code == 503 and "model unavailable" in predicted.json()["error"]
    finally:
        if running.process.poll() is None:
            running.stop()
