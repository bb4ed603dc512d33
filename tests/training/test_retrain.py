"""The loop, end to end with real parts: a champion trained and exported, served by the local server; feedback
sent through the HTTP API (signed tokens) into Azurite; `python -m training retrain --quick`; the gate with
MLflow's model validation. Feedback that contradicts the truth is refused with the reason; feedback that
teaches something true is promoted, and the service then serves the new version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from azure.data.tables import TableClient

from tests.conftest import ROOT, LocalServer, feedback_on
from training.config import DataOptions, load_split
from training.data import load_tweets
from training.promotion.feedback import normalised
from training.promotion.session import run_training_session

SAMPLE = DataOptions(sample=4000, train_on_all=True)  # a small sample: every tweet it holds trains
FEEDBACK_TWEETS = 800
FLIPPED = {"negative": "positive", "positive": "negative", "neutral": "negative"}


@pytest.fixture(scope="module")
def loop(tmp_path_factory, azurite):
    """A logistic-regression champion (version 1) in a fresh MLflow store, exported to its own models/, and
    tweets of the corpus it never saw (with their true labels) plus a few of its frozen test part."""
    folder = tmp_path_factory.mktemp("loop")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_training_session(
            SAMPLE, folder / "mlruns", folder / "models", only=["logreg-lemmatize"], quick=True, latency_samples=20
        )
    split = load_split(SAMPLE)
    seen = {normalised(text) for part in split.parts().values() for text in part["text"]}
    corpus = load_tweets("default")
    unseen = corpus[~corpus["text"].map(normalised).isin(seen)].sample(n=FEEDBACK_TWEETS, random_state=7)
    leaking = split.test.head(10)  # feedback on tweets of the frozen test part: must never be used
    return folder, pd.concat([unseen, leaking], ignore_index=True)


def served(folder: Path, table: str) -> LocalServer:
    return LocalServer(
        env={**os.environ, "SENTIMENT_MODEL_PATH": str(folder / "models" / "champion.json"), "FEEDBACK_TABLE": table}
    )


def send_feedback(server: LocalServer, tweets: pd.DataFrame, claimed: list[str]) -> int:
    """Predict each tweet through the API, then tell the service the `claimed` label; returns how many
    feedbacks were accepted."""
    bodies = []
    texts = tweets["text"].tolist()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for start in range(0, len(texts), 64):
            batch = texts[start : start + 64]
            answers = http.post("/api/predict", json={"texts": batch}).json()["predictions"]
            for text, answer, label in zip(batch, answers, claimed[start : start + 64], strict=True):
                right = answer["label"] == label
                bodies.append(feedback_on(answer, text, correct=right, expected_label=None if right else label))
        with ThreadPoolExecutor(8) as pool:  # eight staff at once, as the service is used
            return sum(pool.map(lambda body: http.post("/api/feedback", json=body).status_code == 202, bodies))


def training_cli(*arguments: str) -> subprocess.CompletedProcess:
    """`python -m training ...` on the loop's own MLflow store, never a tracking server from the environment."""
    return subprocess.run(
        [sys.executable, "-m", "training", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"},
        timeout=600,
    )


def retrain(folder: Path, connection_string: str, table: str) -> dict:
    result = training_cli(
        "retrain",
        "--quick",
        "--store",
        str(folder / "mlruns"),
        "--models-dir",
        str(folder / "models"),
        "--report",
        str(folder / f"{table}.md"),
        "--connection-string",
        connection_string,
        "--table",
        table,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])


def champion_version(folder: Path) -> str:
    return json.loads((folder / "models" / "champion.json").read_text())["version"]


def test_feedback_that_contradicts_the_truth_is_refused(loop, azurite):
    folder, tweets = loop
    table = "poisoned" + uuid.uuid4().hex[:6]
    server = served(folder, table)
    try:
        claimed = [FLIPPED[label] for label in tweets["sentiment"]]
        assert send_feedback(server, tweets, claimed) == len(tweets)
    finally:
        server.stop()
    before = champion_version(folder)
    decision = retrain(folder, azurite, table)
    assert decision["promoted"] is False
    assert any(reason.startswith("frozen test part") for reason in decision["reasons"]), decision["reasons"]
    assert champion_version(folder) == before  # nothing exported
    report = (folder / f"{table}.md").read_text()
    assert "**Refused**" in report and "frozen test part" in report


def test_feedback_that_teaches_something_true_is_promoted_and_served(loop, azurite):
    folder, tweets = loop
    table = "helpful" + uuid.uuid4().hex[:6]
    server = served(folder, table)
    try:
        assert send_feedback(server, tweets, tweets["sentiment"].tolist()) == len(tweets)
        old = httpx.get(f"{server.url}/api/health").json()["model"]["version"]
    finally:
        server.stop()
    # Rows the service did not verify (written around it): counted, never used.
    rows = TableClient.from_connection_string(azurite, table_name=table)
    for index in range(5):
        row_key = str(uuid.uuid4())
        rows.create_entity(
            {
                "PartitionKey": row_key[:2],
                "RowKey": row_key,
                "text": f"@united forged {index}",
                "predicted_label": "negative",
                "correct": True,
            }
        )
    decision = retrain(folder, azurite, table)
    assert decision["promoted"] is True, decision["reasons"]
    counts = decision["feedback_counts"]
    assert counts["dropped: unverified"] == 5
    assert counts["dropped: in the frozen validation or test part"] >= 10
    assert counts["used: training"] + counts["used: held-out judge"] <= FEEDBACK_TWEETS
    assert counts["used: held-out judge"] > 0
    test_checks = {name: figures for name, figures in decision["figures"].items() if name.startswith("frozen test")}
    assert test_checks and all(figures["challenger"] >= figures["threshold"] for figures in test_checks.values())
    new = decision["challenger_version"]
    assert champion_version(folder) == new != old
    report = (folder / f"{table}.md").read_text()
    assert f"**Promoted**: version {new}" in report
    restarted = served(folder, table)
    try:
        assert httpx.get(f"{restarted.url}/api/health").json()["model"]["version"] == new
    finally:
        restarted.stop()
    # The old champion stays in the registry: promote brings it back.
    result = training_cli(
        "promote", "--version", old, "--store", str(folder / "mlruns"), "--models-dir", str(folder / "models")
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert champion_version(folder) == old
