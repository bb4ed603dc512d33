"""Custom events through the real Azure Monitor exporter, to an ingestion endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tests.conftest import NEGATIVE_TWEET, IngestionEndpoint, LocalServer, feedback_on, free_port, telemetry_environment
from tweet_sentiment import telemetry
from tweet_sentiment.settings import Settings

TWEET_WITH_URL = "@united lost my bag again, worst airline ever http://t.co/vhp2GtDWPk"


def wait_for(condition, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("telemetry did not arrive in time")


CONTEXT = {"followers": 12000, "retweets": 340, "likes": 5, "created_at": "2026-12-05T09:30:00+01:00", "tweet_id": "1"}


def predict_then_feedback(server: LocalServer) -> tuple[dict, dict]:
    prediction = httpx.post(f"{server.url}/api/predict", json={"text": TWEET_WITH_URL, "context": CONTEXT}).json()
    expected = "neutral" if prediction["label"] != "neutral" else "positive"
    feedback = feedback_on(prediction, TWEET_WITH_URL, correct=False, expected_label=expected)
    assert httpx.post(f"{server.url}/api/feedback", json=feedback).status_code == 202
    return prediction, feedback


@pytest.fixture()
def ingestion():
    endpoint = IngestionEndpoint()
    yield endpoint
    endpoint.stop()


def test_prediction_and_feedback_events_without_text(azurite, ingestion):
    server = LocalServer(env=telemetry_environment(ingestion.url))
    try:
        prediction, feedback = predict_then_feedback(server)
        wait_for(lambda: ingestion.events("prediction") and ingestion.events("feedback"))
    finally:
        server.stop()
    (predicted,) = ingestion.events("prediction")
    assert predicted["prediction_id"] == prediction["prediction_id"]
    assert predicted["predicted_label"] == prediction["label"]
    assert json.loads(predicted["scores"]) == prediction["scores"]
    assert predicted["model_version"] == prediction["model"]["version"]
    assert float(predicted["latency_ms"]) > 0
    assert (predicted["language"], predicted["readable"]) == ("en", "true")
    # How loud and why: the numbers and the reason, never the tweet's id or its author.
    assert (predicted["reach"], predicted["followers"], predicted["retweets"], predicted["likes"]) == (
        "12345",
        "12000",
        "340",
        "5",
    )
    assert predicted["reason"] == prediction["reason"]["label"] and "replies" not in predicted
    assert "tweet_id" not in predicted and "created_at" not in predicted
    (received,) = ingestion.events("feedback")
    assert received["prediction_id"] == prediction["prediction_id"]
    assert (received["correct"], received["expected_label"]) == ("false", feedback["expected_label"])
    assert "text" not in predicted and "text" not in received
    assert all("lost my bag" not in json.dumps(envelope) for envelope in ingestion.envelopes)


def test_text_is_sent_masked_only_when_allowed(azurite, ingestion):
    server = LocalServer(env=telemetry_environment(ingestion.url, TELEMETRY_INCLUDE_TEXT="true"))
    try:
        predict_then_feedback(server)
        wait_for(lambda: ingestion.events("prediction") and ingestion.events("feedback"))
    finally:
        server.stop()
    expected = "@user lost my bag again, worst airline ever <url>"
    assert ingestion.events("prediction")[0]["text"] == expected
    assert ingestion.events("feedback")[0]["text"] == expected
    assert all("@united" not in json.dumps(envelope) for envelope in ingestion.envelopes)


@pytest.mark.parametrize("outage", ["refused", "failing"])
def test_telemetry_outage_does_not_touch_answers(azurite, outage):
    failing = IngestionEndpoint(status=503)
    url = f"http://127.0.0.1:{free_port()}/" if outage == "refused" else failing.url
    server = LocalServer(env=telemetry_environment(url))
    try:
        for _ in range(3):
            started = time.monotonic()
            prediction, _ = predict_then_feedback(server)
            assert prediction["label"] == "negative"
            assert time.monotonic() - started < 5
        assert httpx.get(f"{server.url}/api/health").status_code == 200
    finally:
        server.stop()
        failing.stop()
    assert failing.envelopes == []


def test_no_connection_string_means_no_exporter(monkeypatch):
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", raising=False)
    assert telemetry.configure(Settings.from_environment()) == "disabled"


def test_worker_configured_telemetry_is_not_configured_twice(monkeypatch):
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=" + str(uuid.uuid4()))
    assert telemetry.configure(Settings.from_environment()) == "worker"


def test_mask():
    assert telemetry.mask(NEGATIVE_TWEET + " see https://t.co/abc @JetBlue") == (
        "@user lost my bag again, worst airline ever see <url> @user"
    )


def test_a_tweet_in_another_language_is_sent_as_unreadable(ingestion):
    server = LocalServer(env=telemetry_environment(ingestion.url))
    try:
        answer = httpx.post(f"{server.url}/api/predict", json={"text": "@AirParadis vol annulé, scandaleux"}).json()
        wait_for(lambda: ingestion.events("prediction"))
    finally:
        server.stop()
    (predicted,) = ingestion.events("prediction")
    assert answer["language"] == "fr"
    assert (predicted["language"], predicted["readable"]) == ("fr", "false")  # what the KQL rules filter on
