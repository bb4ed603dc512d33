"""Knowledge distillation (Hinton et al. 2015): the teacher (bert-mpnet, fine-tuned on the training part) labels
a transfer set, and the student (the served MiniLM architecture) learns from the teacher's temperature-scaled
probabilities and the gold labels.

The teacher's outputs are an MLflow artifact of the teacher's run, keyed by the sha256 of each tweet: a student
run reads them and never retrains the teacher; tweets the cache lacks (feedback added by `retrain`) are scored
by the teacher's exported ONNX graph from the same run. A teacher run is itself reused when a finished run of the
same recipe on the same split exists (tag `recipe`)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from tweet_sentiment.model import SentimentModel

from .. import tracking
from ..data import DataError, Split
from .bert import (
    CHECKPOINTS,
    MINILM,
    TrainingTweets,
    calibration_tweets,
    fine_tune,
    frame_reasons,
    gold_tweets,
    labelled,
    quantised,
)
from .candidate import Candidate

logger = logging.getLogger(__name__)

TEACHER_FAMILY = "bert-mpnet"
OUTPUTS_ARTIFACT = "teacher/outputs.npz"


def tweet_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def transfer_tweets(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> pd.DataFrame:
    """The tweets the student learns the teacher's answers on: the gold training tweets (training part and
    emoji tweets), then the corpus' other tweets (no airline, not in any part; their label is not used), never
    a tweet whose text is in the validation or test part. Column `sentiment` is None for transfer-only tweets."""
    gold = gold_tweets(split, labels, params, seed)
    held_out = set(split.validation["text"]) | set(split.test["text"]) | set(gold["text"])
    others = split.others[~split.others["text"].isin(held_out)].drop_duplicates("text")
    if params["transfer_sample"]:
        others = others.sample(n=min(len(others), params["transfer_sample"]), random_state=seed)
    return pd.concat([gold, others[["text"]].assign(sentiment=None)], ignore_index=True)


def outputs_file(texts: list[str], log_probabilities: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        keys=np.array([tweet_key(text) for text in texts]),
        log_probabilities=log_probabilities.astype(np.float32),
    )
    return buffer.getvalue()


def read_outputs(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return dict(zip(stored["keys"].tolist(), stored["log_probabilities"], strict=True))


def recipe_key(split: Split, params: dict[str, Any]) -> str:
    """What makes two teacher runs the same: the recipe and the split (every part's hash). The int8 twin's
    calibration tweets are left out: they shape the twin, not the teacher's cached outputs."""
    recipe = {key: value for key, value in params.items() if key != "calibration_tweets"}
    described = {**split.description(), **recipe}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _teacher_runs(validation_sha256: str) -> list[Run]:
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    if experiment is None:
        return []
    runs = MlflowClient().search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.family = '{TEACHER_FAMILY}' and tags.variant = 'fine-tuned' and tags.teacher = 'yes'"
        " and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    return [
        run
        for run in runs
        if run.data.params.get("split.validation.sha256") == validation_sha256 and not run.data.tags.get("export_error")
    ]


def fit_teacher(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> list[Candidate]:
    """The teacher fine-tuned on the gold training tweets, with its outputs on the transfer set as an artifact;
    nothing (an empty list) when this store already holds a finished teacher of the same recipe and split."""
    recipe = recipe_key(split, params)
    reused = [
        run
        for run in _teacher_runs(str(split.description()["split.validation.sha256"]))
        if run.data.tags.get("recipe") == recipe
    ]
    if reused:
        logger.info("bert-mpnet: reusing teacher run %s (same recipe and split): not retrained", reused[0].info.run_id)
        return []
    checkpoint = CHECKPOINTS[params["checkpoint"]]
    candidate, log_probabilities = fine_tune(
        checkpoint,
        TEACHER_FAMILY,
        "fine-tuned",
        labelled(gold_tweets(split, labels, params, seed), labels),
        split,
        labels,
        params,
        seed,
    )
    transfer = transfer_tweets(split, labels, params, seed)["text"].tolist()
    logger.info("bert-mpnet: labelling %d transfer tweets", len(transfer))
    candidate.artifacts = {OUTPUTS_ARTIFACT: outputs_file(transfer, log_probabilities(transfer))}
    candidate.tags = {"teacher": "yes", "recipe": recipe}
    return [candidate, quantised(candidate, calibration_tweets(split, seed, params["calibration_tweets"]))]


def teacher_outputs(texts: list[str], validation_sha256: str) -> tuple[np.ndarray, str, int]:
    """The newest teacher's log-probabilities for `texts` (its cached outputs; its exported graph for the
    tweets they lack), the teacher's run id, and how many tweets the graph had to score."""
    runs = _teacher_runs(validation_sha256)
    if not runs:
        raise DataError(
            "no teacher on this split in the tracking store: the distilled student learns from bert-mpnet's "
            "outputs. Fix: python -m training train --only bert-mpnet (hours on 2 CPU cores, once), or point "
            "MLFLOW_TRACKING_URI at the store that has it"
        )
    run = runs[0]
    with tempfile.TemporaryDirectory() as folder:
        cached = read_outputs(
            Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run.info.run_id, artifact_path=OUTPUTS_ARTIFACT, dst_path=folder
                )
            )
        )
        missing = sorted({text for text in texts if tweet_key(text) not in cached})
        if missing:
            logger.info("teacher %s: scoring %d tweets its cache lacks", run.info.run_id, len(missing))
            onnx = Path(
                mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="onnx", dst_path=folder)
            )
            teacher = SentimentModel.load(onnx / "model.json", intra_op_threads=os.cpu_count() or 1)
            scored = np.log(np.clip(teacher.probabilities(missing), 1e-12, None))
            cached.update({tweet_key(text): row for text, row in zip(missing, scored, strict=True)})
    rows = np.stack([cached[tweet_key(text)] for text in texts]).astype(np.float32)
    return rows, run.info.run_id, len(missing)


def distil_minilm(split: Split, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    """The MiniLM student, distilled from the newest teacher on this split."""
    transfer = transfer_tweets(split, labels, params, seed)
    texts = transfer["text"].tolist()
    teacher, teacher_run, scored = teacher_outputs(texts, str(split.description()["split.validation.sha256"]))
    gold = np.array([labels.index(label) if label is not None else -1 for label in transfer["sentiment"]])
    tweets = TrainingTweets(texts, gold, frame_reasons(transfer), teacher)
    candidate, _ = fine_tune(MINILM, "bert-minilm", "distilled", tweets, split, labels, params, seed)
    candidate.params = {**candidate.params, "teacher_run": teacher_run, "teacher_scored_tweets": scored}
    candidate.tags = {"teacher_run": teacher_run}
    return candidate
