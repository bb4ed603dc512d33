"""Feedback sent to the service comes back out of Table Storage as training data the loaders accept."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import azure.functions as func
from azure.data.tables import TableClient

from tests.conftest import ROOT, free_port
from training.data import load_tweets
from tweet_sentiment.feedback import azurite_connection_string


def send(feedback_function, **payload) -> None:
    import function_app

    prediction_id = str(uuid.uuid4())
    token = function_app.signer.sign(prediction_id, payload["predicted_label"], "7", payload["text"])
    body = json.dumps({"prediction_id": prediction_id, "prediction_token": token, **payload}).encode()
    response = feedback_function(
        func.HttpRequest(method="POST", url="/api/feedback", body=body, headers={"Content-Type": "application/json"})
    )
    assert response.status_code == 202


def export_command(out, connection_string: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "feedback-export",
            "--out",
            str(out),
            "--connection-string",
            connection_string,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_feedback_round_trip_to_a_training_csv(http_functions, feedback_storage, tmp_path):
    azurite = feedback_storage
    marker = uuid.uuid4().hex[:8]  # the session's table also holds other tests' feedback
    right = f"@united thanks for the upgrade {marker}"
    wrong = f"@united well that went great, stuck for five hours {marker}"
    unknown = f"@united hmm {marker}"
    send(http_functions["feedback"], text=right, predicted_label="positive", correct=True)
    send(http_functions["feedback"], text=wrong, predicted_label="positive", correct=False, expected_label="negative")
    send(http_functions["feedback"], text=unknown, predicted_label="neutral", correct=False)

    out = tmp_path / "feedback.csv"
    result = export_command(out, azurite)
    assert result.returncode == 0, result.stderr
    assert "--source csv --data-path" in result.stdout

    tweets = load_tweets("csv", out)
    labels = dict(zip(tweets["text"], tweets["sentiment"], strict=True))
    assert labels[right] == "positive" and labels[wrong] == "negative"
    assert unknown not in labels


def test_unreachable_storage_says_so(tmp_path):
    result = export_command(tmp_path / "f.csv", azurite_connection_string(port=free_port()))
    assert result.returncode == 2
    assert "is unreachable" in result.stderr and "Traceback" not in result.stderr


def test_only_verified_readable_feedback_is_exported_and_never_a_partial_file(
    http_functions, feedback_storage, tmp_path
):
    azurite = feedback_storage
    marker = uuid.uuid4().hex[:8]
    good = f"@united great crew today {marker}"
    send(http_functions["feedback"], text=good, predicted_label="positive", correct=True)
    table = TableClient.from_connection_string(azurite, table_name="feedback")
    # Rows the service would not write today: no signature (written before tokens), a lone surrogate.
    for text, signed in ((f"@united forged row {marker}", False), (f"@united \ud800 broken {marker}", True)):
        row_key = str(uuid.uuid4())
        table.create_entity(
            {
                "PartitionKey": row_key[:2],
                "RowKey": row_key,
                "text": text,
                "correct": True,
                "predicted_label": "negative",
                **({"signing_key_id": "abc"} if signed else {}),
            }
        )
    out = tmp_path / "feedback.csv"
    result = export_command(out, azurite)
    assert result.returncode == 0, result.stderr
    assert "unverified" in result.stdout and "unreadable text" in result.stdout
    texts = set(load_tweets("csv", out)["text"])
    assert good in texts and not any(marker in text and text != good for text in texts)

    out.write_text("previous export\n")
    failed = export_command(out, azurite_connection_string(port=free_port()))
    assert failed.returncode == 2
    assert out.read_text() == "previous export\n"  # untouched, and no temporary file left beside it
    assert [path.name for path in tmp_path.iterdir()] == ["feedback.csv"]
