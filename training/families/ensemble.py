"""Ensembles as candidates: the weighted average of members already exported to the registry on the same split
(for example the int8 MiniLM, the GloVe biLSTM and logistic regression), the weights fit on validation only.
The ensemble is served like any model: its manifest names each member's manifest (sha256-checked), and the
runner gives it the same figures, parity check, latency and report row as every other candidate."""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score, log_loss

from tweet_sentiment.model import SentimentModel, combine
from tweet_sentiment.text import TextConfig

from .. import tracking
from ..data import DataError, Split
from .candidate import MEMBER_PREFIX, Candidate


def member_runs(names: list[str], validation_sha256: str) -> list[Run]:
    """The newest exported run of each named model evaluated on this validation part."""
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    runs = (
        MlflowClient().search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
        if (experiment)
        else []
    )
    chosen = []
    for name in names:
        found = next(
            (
                run
                for run in runs
                if run.info.run_name == name
                and run.data.params.get("split.validation.sha256") == validation_sha256
                and "latency_single_ms_p95" in run.data.metrics
                and not run.data.tags.get("export_error")
            ),
            None,
        )
        if found is None:
            raise DataError(
                f"ensemble member {name} has no exported run on this split: train it first "
                f"(python -m training train --only {name}) with the same data options"
            )
        chosen.append(found)
    return chosen


def fit_weights(probabilities: list[np.ndarray], gold: np.ndarray, step: float) -> tuple[float, ...]:
    """The weights on the simplex (a grid of `step`) with the best validation macro-F1, ties to log loss."""
    ticks = round(1 / step)
    best: tuple[float, float, tuple[float, ...]] | None = None
    for counts in itertools.product(range(ticks + 1), repeat=len(probabilities)):
        if sum(counts) != ticks:
            continue
        weights = tuple(count / ticks for count in counts)
        mixed = sum(weight * matrix for weight, matrix in zip(weights, probabilities, strict=True))
        assert isinstance(mixed, np.ndarray)
        score = f1_score(gold, mixed.argmax(axis=1), average="macro")
        loss = log_loss(gold, np.clip(mixed, 1e-7, 1), labels=list(range(mixed.shape[1])))
        if best is None or (score, -loss) > (best[0], -best[1]):
            best = (float(score), float(loss), weights)
    assert best is not None
    return best[2]


def _member_files(index: int, folder: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A member's files renamed member-<index>.*, and its manifest entry (its manifest's sha256)."""
    manifest = json.loads((folder / "model.json").read_text())
    files = {f"{MEMBER_PREFIX}{index}.onnx": (folder / manifest["onnx_file"]).read_bytes()}
    manifest["onnx_file"] = f"{MEMBER_PREFIX}{index}.onnx"
    for role, asset in manifest["assets"].items():
        files[f"{MEMBER_PREFIX}{index}.{role}.json"] = (folder / asset["file"]).read_bytes()
        asset["file"] = f"{MEMBER_PREFIX}{index}.{role}.json"
    content = (json.dumps(manifest, indent=2) + "\n").encode()
    files[f"{MEMBER_PREFIX}{index}.json"] = content
    return files, {"manifest": f"{MEMBER_PREFIX}{index}.json", "sha256": hashlib.sha256(content).hexdigest()}


def fit_ensemble(split: Split, variant: str, labels: list[str], params: dict[str, Any], seed: int) -> Candidate:
    started = time.perf_counter()
    names: list[str] = params["members"]
    runs = member_runs(names, str(split.description()["split.validation.sha256"]))
    working = Path(tempfile.mkdtemp(prefix="ensemble-"))
    members, files, entries = [], [], []
    for index, run in enumerate(runs):
        folder = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="onnx", dst_path=str(working / str(index))
            )
        )
        model = SentimentModel.load(folder / "model.json")
        if model.labels != labels:
            raise DataError(f"ensemble member {run.info.run_name} has the labels {model.labels}, not {labels}")
        member_files, entry = _member_files(index, folder)
        members.append(model)
        files.append(member_files)
        entries.append(entry)
    texts = split.validation["text"].tolist()
    gold = np.array([labels.index(label) for label in split.validation["sentiment"]])
    weights = fit_weights([model.probabilities(texts) for model in members], gold, params["weight_step"])
    for entry, weight in zip(entries, weights, strict=True):
        entry["weight"] = weight
    kept = [index for index, weight in enumerate(weights) if weight > 0]
    used = [(members[index], weights[index]) for index in kept]

    def predict_proba(tweets: list[str]) -> np.ndarray:
        return combine([model.scored(tweets) for model, _ in used], [weight for _, weight in used]).probabilities

    return Candidate(
        family="ensemble",
        variant=variant,
        text_config=TextConfig(),
        labels=labels,
        params={
            "members": ", ".join(names),
            "weights": ", ".join(f"{w:.2f}" for w in weights),
            "weights_fit_on": "validation macro-F1",
        },
        predict_proba=predict_proba,
        onnx=None,
        input_kind="ensemble",
        members=[entries[index] for index in kept],
        member_files={name: content for index in kept for name, content in files[index].items()},
        search=[{"weights": str(weights)}],
        training_seconds=time.perf_counter() - started,
    )
