"""Feedback sent to the service comes back out of Table Storage as training data the loaders accept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import azure.functions as func

from tests.conftest import ROOT, free_port
from training.data import load_tweets
from tweet_sentiment.feedback import azurite_connection_string


def send(feedback_function, **payload) -> None:
    body = json.dumps({"prediction_id": str(uuid.uuid4()), **payload}).encode()
    response = feedback_function(func.HttpRequest(method="POST", url="/api/feedback", body=body, headers={}))
    assert response.status_code == 202


def test_feedback_round_trip_to_a_training_csv(http_functions, azurite, tmp_path):
    marker = uuid.uuid4().hex[:8]  # the session's table also holds other tests' feedback
    right = f"@united thanks for the upgrade {marker}"
    wrong = f"@united well that went great, stuck for five hours {marker}"
    unknown = f"@united hmm {marker}"
    send(http_functions["feedback"], text=right, predicted_label="positive", correct=True)
    send(http_functions["feedback"], text=wrong, predicted_label="positive", correct=False, expected_label="negative")
    send(http_functions["feedback"], text=unknown, predicted_label="neutral", correct=False)

    out = tmp_path / "feedback.csv"
    result = subprocess.run([sys.executable, "-m", "training", "feedback-export", "--out", str(out)],
                            cwd=ROOT, env={**os.environ, "FEEDBACK_STORAGE_CONNECTION_STRING": azurite},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--source csv --data-path" in result.stdout

    tweets = load_tweets("csv", out)
    labels = dict(zip(tweets["text"], tweets["sentiment"]))
    assert labels[right] == "positive" and labels[wrong] == "negative"
    assert unknown not in labels


def test_unreachable_storage_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training", "feedback-export", "--out", str(tmp_path / "f.csv"),
                             "--connection-string", azurite_connection_string(port=free_port())],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is unreachable" in result.stderr and "Traceback" not in result.stderr
