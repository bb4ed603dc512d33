"""The champion: which registered version is served, and its export to models/. Choosing it reads validation
figures only; exporting it is the test part's first and only use."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tweet_sentiment.calibration import scaled
from tweet_sentiment.model import SentimentModel

from .. import tracking
from ..config import split_of_run
from ..data import Split
from ..families.candidate import MEMBER_PREFIX
from ..pipeline import evaluate, export
from ..pipeline.calibration import ece, reliability_diagram
from ..pipeline.runner import log_evaluation
from ..tracking import CHAMPION, MODEL_NAME, TrackingError


def promote_best(validation_sha256: str) -> ModelVersion:
    """Move the `champion` alias to the registered version with the best validation macro-F1 among those
    that meet the serving budget and were evaluated on this very validation part (figures on other parts do
    not compare). The champion answers both questions: when any such version has a reason head, only those
    compete (a session of families without one, `--only logreg`, still gets a champion). Ties go to the faster
    model (an ensemble whose weights all went to one member scores as that member)."""
    client = MlflowClient()
    best: tuple[tuple[float, float, float], ModelVersion] | None = None
    for version in client.search_model_versions(f"name='{MODEL_NAME}'"):
        run = tracking.run_of(version)
        if (
            run.data.params.get("split.validation.sha256") != validation_sha256
            or run.data.metrics.get("within_budget") != 1.0
        ):
            continue
        if "val_macro_f1" not in run.data.metrics:
            continue
        score = (
            float(tracking.answers_reasons(run)),
            run.data.metrics["val_macro_f1"],
            -run.data.metrics.get("latency_single_p50_ratio", float("inf")),
        )
        if best is None or score > best[0]:
            best = (score, version)
    if best is None:
        raise TrackingError(
            f"no registered {MODEL_NAME} version validated on this split meets the serving budget: "
            "train one first, or raise SERVING_LATENCY_BUDGET_RATIO / SERVING_SIZE_BUDGET_MB"
        )
    set_alias(best[1], CHAMPION)
    return best[1]


def set_alias(version: ModelVersion, alias: str) -> None:
    MlflowClient().set_registered_model_alias(MODEL_NAME, alias, version.version)


def promote(version: int, store: Path, models_dir: Path) -> Path:
    """Make a registered version the champion and export it to `models_dir` (also how to roll back)."""
    tracking.configure(store)
    client = MlflowClient()
    try:
        chosen = client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as error:
        raise tracking.TrackingError(f"no version {version} of {MODEL_NAME} in the registry") from error
    _, split = split_of_run(tracking.run_of(chosen))
    manifest_path = export_version(chosen, split, models_dir)
    set_alias(chosen, CHAMPION)
    return manifest_path


def export_version(version: ModelVersion, split: Split, models_dir: Path) -> Path:
    """Evaluate a registered version on the test part through the serving package, check it against the
    native model's test probabilities recorded at training, and write it to `models_dir` as the champion."""
    run = tracking.run_of(version)
    if run.data.params.get("split.test.sha256") != split.description()["split.test.sha256"]:
        raise TrackingError(
            "this version was not trained on this split (test part hashes differ): "
            "export it with the data options it was trained with"
        )
    texts, gold = split.test["text"].tolist(), split.test["sentiment"].tolist()
    with tempfile.TemporaryDirectory() as folder:
        onnx_dir = Path(
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="onnx", dst_path=folder)
        )
        native = np.load(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="native/test_probabilities.npy", dst_path=folder
            )
        )
        served_model = SentimentModel.load(onnx_dir / "model.json")
        manifest = served_model.manifest
        scored = served_model.scored(texts)
        served = scored.probabilities
        native_reasons = None
        if manifest.reasons:
            native_reasons = np.load(
                mlflow.artifacts.download_artifacts(
                    run_id=run.info.run_id, artifact_path="native/test_reason_probabilities.npy", dst_path=folder
                )
            )
        gold_codes = np.array([manifest.labels.index(label) for label in gold])
        calibrated = scaled(served, manifest.calibration.get("temperature", 1.0))
        test_metrics = {
            name: round(value, 6)
            for name, value in {
                **evaluate.metrics(gold, served, manifest.labels),
                "ece_raw": ece(served, gold_codes),
                "ece": ece(calibrated, gold_codes),
            }.items()
        }
        assets = {role: (onnx_dir / asset["file"]).read_bytes() for role, asset in manifest.assets.items()}
        members = {path.name: path.read_bytes() for path in onnx_dir.glob(f"{MEMBER_PREFIX}*")}
        manifest_path, check = export.write_checked(
            (onnx_dir / manifest.onnx_file).read_bytes() if manifest.onnx_file else None,
            export.released(manifest, str(version.version), test_metrics),
            texts,
            native,
            models_dir,
            assets=assets,
            member_files=members,
            max_difference=float(run.data.params.get("parity.max_difference", export.MAX_PROBABILITY_DIFFERENCE)),
            min_agreement=float(run.data.params.get("parity.min_agreement", 1.0)),
            native_reasons=native_reasons,
        )
    with mlflow.start_run(run_id=run.info.run_id), tempfile.TemporaryDirectory() as folder:
        log_evaluation("test", gold, served, manifest.labels)
        mlflow.log_metrics({f"test_{name}": value for name, value in check.items()})
        mlflow.log_metrics({"test_ece_raw": test_metrics["ece_raw"], "test_ece": test_metrics["ece"]})
        diagram = reliability_diagram(
            {"raw": (served, gold_codes), "calibrated": (calibrated, gold_codes)},
            "sentiment on test (champion)",
            Path(folder) / "test_sentiment_reliability.png",
        )
        mlflow.log_artifact(str(diagram), "calibration")
        for path in [*models_dir.glob(f"{export.CHAMPION_STEM}.*"), *models_dir.glob(f"{MEMBER_PREFIX}*")]:
            mlflow.log_artifact(str(path), "champion")
    _remove_unused_files(manifest_path, models_dir)
    return manifest_path


def _remove_unused_files(manifest_path: Path, models_dir: Path) -> None:
    """Files of an earlier champion that this one does not use (a vocabulary, a tokenizer, members) go."""
    manifest = json.loads(manifest_path.read_text())
    members = [json.loads((models_dir / member["manifest"]).read_text()) for member in manifest.get("members", [])]
    current = {manifest_path.name, *(member["manifest"] for member in manifest.get("members", []))}
    for described in (manifest, *members):
        current |= {described["onnx_file"], *(asset["file"] for asset in described["assets"].values())}
    for path in [*models_dir.glob(f"{export.CHAMPION_STEM}.*"), *models_dir.glob(f"{MEMBER_PREFIX}*")]:
        if path.name not in current:
            path.unlink()


def export_champion(split: Split, models_dir: Path) -> Path:
    return export_version(tracking.champion(), split, models_dir)


def export_from_registry(store: Path, models_dir: Path) -> Path:
    """Re-export the current champion, rebuilding its split from the data options logged with its run."""
    tracking.configure(store)
    _, split = split_of_run(tracking.run_of(tracking.champion()))
    return export_champion(split, models_dir)
