"""One candidate through the same steps, whatever its family, so every row of the comparison has the same
figures: log its inputs, evaluate it on validation, export it with the parity check, time the served graph,
register it. The test part is not read here (see champion.py)."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd

from tweet_sentiment.calibration import scaled
from tweet_sentiment.labels import LABELS, REASONS
from tweet_sentiment.model import SentimentModel

from .. import tracking
from ..config import Budget, DataOptions
from ..data import Split, reason_codes, reasons_fingerprint, tweet_key
from ..families.candidate import Candidate
from . import evaluate, export
from .calibration import calibrate, reliability_diagram
from .reference import machine, time_against_reference
from .served_requirements import served_model_file, served_requirements, serving_package_folder

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Exported:
    """A candidate's checked ONNX files in a working folder, with its parity figures."""

    folder: Path
    manifest_path: Path
    parity: dict[str, float]

    @property
    def size_mb(self) -> float:
        return sum(path.stat().st_size for path in self.folder.iterdir()) / 1e6


def log_evaluation(
    prefix: str, gold: list[str], probabilities: np.ndarray, labels: list[str], predicted: list[str] | None = None
) -> dict[str, float]:
    """Metrics, the classification report and the plots of one evaluation, in the active MLflow run."""
    figures = evaluate.metrics(gold, probabilities, labels, predicted)
    mlflow.log_metrics({f"{prefix}_{name}": value for name, value in figures.items()})
    mlflow.log_text(evaluate.report(gold, probabilities, labels, predicted), f"{prefix}/classification_report.txt")
    with tempfile.TemporaryDirectory() as folder:
        for path in evaluate.save_plots(gold, probabilities, labels, Path(folder), prefix, predicted):
            mlflow.log_artifact(str(path), prefix)
    return figures


def log_reasons(prefix: str, texts: list[str], reason_probabilities: np.ndarray, reasons: list[str]) -> np.ndarray:
    """The reason head's figures on the tweets of `texts` the team labelled, its confusion matrix, and its
    answer for each of them (by sha256, for paired comparisons in the report); returns the labelled rows."""
    codes = reason_codes(texts)
    labelled = codes >= 0
    if not labelled.any():
        return labelled
    gold = [reasons[code] for code in codes[labelled]]
    predicted = [reasons[code] for code in reason_probabilities[labelled].argmax(axis=1)]
    figures = evaluate.reason_metrics(gold, predicted, reasons)
    mlflow.log_metrics({f"{prefix}_reason_{name}": value for name, value in figures.items()})
    keys = [tweet_key(text) for text, known in zip(texts, labelled, strict=True) if known]
    mlflow.log_dict(dict(zip(keys, predicted, strict=True)), f"{prefix}_reason/predicted.json")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{prefix}_reason_confusion_matrix.png"
        mlflow.log_artifact(str(evaluate.confusion_plot(gold, predicted, reasons, f"Reasons ({prefix})", path)), prefix)
    return labelled


def log_calibration(
    gold: list[str], native: np.ndarray, labels: list[str], native_reasons: np.ndarray | None, texts: list[str]
) -> dict[str, float]:
    """Temperatures and unsure lines of both heads fitted on validation (the manifest's `calibration`), their
    ECE before and after, and the reliability diagrams."""
    curves = {}
    gold_codes = np.array([labels.index(label) for label in gold])
    sentiment = calibrate(native, gold_codes)
    calibration = {"temperature": sentiment["temperature"], "unsure_below": sentiment["unsure_below"]}
    figures = {"val_ece_raw": sentiment["ece_raw"], "val_ece": sentiment["ece"]}
    curves["sentiment"] = (native, gold_codes, sentiment["temperature"])
    codes = reason_codes(texts)
    if native_reasons is not None and (codes >= 0).any():
        labelled = codes >= 0
        reason = calibrate(native_reasons[labelled], codes[labelled])
        calibration |= {"reason_temperature": reason["temperature"], "reason_unsure_below": reason["unsure_below"]}
        figures |= {"val_reason_ece_raw": reason["ece_raw"], "val_reason_ece": reason["ece"]}
        curves["reason"] = (native_reasons[labelled], codes[labelled], reason["temperature"])
    mlflow.log_metrics(figures)
    mlflow.log_dict(calibration, "calibration.json")
    with tempfile.TemporaryDirectory() as folder:
        for head, (probabilities, codes_of_head, temperature) in curves.items():
            diagram = reliability_diagram(
                {
                    "raw": (probabilities, codes_of_head),
                    f"T = {temperature}": (scaled(probabilities, temperature), codes_of_head),
                },
                f"{head} on validation",
                Path(folder) / f"val_{head}_reliability.png",
            )
            mlflow.log_artifact(str(diagram), "calibration")
    return calibration


def log_inputs(candidate: Candidate, split: Split, data: DataOptions) -> None:
    mlflow.set_tags({"family": candidate.family, "variant": candidate.variant, **candidate.tags, **machine()})
    mlflow.log_params(
        {
            **data.params(),
            **split.description(),
            "reasons.sha256": reasons_fingerprint(),
            "family": candidate.family,
            "variant": candidate.variant,
            "input_kind": candidate.input_kind,
            **{f"text.{key}": value for key, value in candidate.text_config.to_dict().items()},
            **{f"model.{key}": value for key, value in candidate.params.items()},
        }
    )
    mlflow.log_dict(candidate.text_config.to_dict(), "text_config.json")
    if candidate.search:
        mlflow.log_table(pd.DataFrame(candidate.search), "search/candidates.json")


def export_with_parity(
    candidate: Candidate,
    run_id: str,
    texts: list[str],
    native: np.ndarray,
    folder: Path,
    native_reasons: np.ndarray | None = None,
    calibration: dict[str, float] | None = None,
) -> Exported:
    """The candidate's ONNX graph and assets, written only if the served graph agrees with the native model
    on `texts`, both heads (raises export.ExportError otherwise)."""
    manifest_path, check = export.write_checked(
        candidate.onnx,
        export.described(candidate, run_id, calibration or {}),
        texts,
        native,
        folder,
        native_reasons=native_reasons,
        stem="model",
        assets=candidate.assets,
        max_difference=candidate.parity_max_difference,
        min_agreement=candidate.parity_min_agreement,
        member_files=candidate.member_files,
    )
    return Exported(folder, manifest_path, check)


def _log_bytes(content: bytes, artifact_path: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(artifact_path).name
        path.write_bytes(content)
        mlflow.log_artifact(str(path), str(Path(artifact_path).parent))


def served_signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from tweet_sentiment.scoring import SCORE_COLUMNS
    from tweet_sentiment.tabular import NUMBER_COLUMNS

    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        # A row that cannot be scored has an error and no label, scores or language.
        outputs=Schema(
            [
                ColSpec(
                    "double" if column in NUMBER_COLUMNS else "string",
                    column,
                    required=column in ("model_version", "error"),
                )
                for column in SCORE_COLUMNS
            ]
        ),
    )


def register(candidate: Candidate, exported: Exported, description: str) -> None:
    """The candidate's native model (when it has one), then a new registered version: a pyfunc that takes raw
    tweets and answers through the serving package on the exported files (training/pipeline/served_model.py), named in
    the registry by its family, variant and figures."""
    from mlflow.tracking import MlflowClient

    if candidate.log_native:
        candidate.log_native()
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(served_model_file()),
        artifacts={"model": str(exported.folder)},
        code_paths=[str(serving_package_folder())],
        registered_model_name=tracking.MODEL_NAME,
        pip_requirements=served_requirements(),
        signature=served_signature(),
    )
    client, version = MlflowClient(), str(info.registered_model_version)
    client.update_model_version(tracking.MODEL_NAME, version, description=description)
    for key, value in {"model": candidate.name, "family": candidate.family, "variant": candidate.variant}.items():
        client.set_model_version_tag(tracking.MODEL_NAME, version, key, value)


def run_candidate(
    candidate: Candidate, split: Split, data: DataOptions, budget: Budget, latency_samples: int = 200
) -> str:
    """Every step for one candidate, in its own MLflow run; returns the run id. A candidate failing parity
    is recorded (tag export_error) and never registered."""
    texts, gold = split.validation["text"].tolist(), split.validation["sentiment"].tolist()
    with mlflow.start_run(run_name=candidate.name) as run, tempfile.TemporaryDirectory() as working:
        log_inputs(candidate, split, data)
        native = candidate.predict_proba(texts)
        figures = log_evaluation("val", gold, native, candidate.labels)
        native_reasons = candidate.predict_reasons(texts) if candidate.predict_reasons else None
        if native_reasons is not None:
            log_reasons("val", texts, native_reasons, candidate.reasons)
        calibration = log_calibration(gold, native, candidate.labels, native_reasons, texts)
        try:
            exported = export_with_parity(
                candidate, run.info.run_id, texts, native, Path(working) / "onnx", native_reasons, calibration
            )
        except export.ExportError as error:
            mlflow.set_tag("export_error", str(error)[:5000])
            mlflow.log_metric("within_budget", 0.0)
            logger.warning("%s: not exported: %s", candidate.name, error)
            return run.info.run_id
        latency = time_against_reference(SentimentModel.load(exported.manifest_path), texts, latency_samples)
        size_mb = exported.size_mb
        misses = budget.misses({**latency, "onnx_size_mb": size_mb})
        # The test part's native probabilities, kept unread for the champion's parity check at export.
        native_test = Path(working) / "test_probabilities.npy"
        np.save(native_test, candidate.predict_proba(split.test["text"].tolist()))
        mlflow.log_artifacts(str(exported.folder), "onnx")
        mlflow.log_artifact(str(native_test), "native")
        if candidate.predict_reasons:
            native_test_reasons = Path(working) / "test_reason_probabilities.npy"
            np.save(native_test_reasons, candidate.predict_reasons(split.test["text"].tolist()))
            mlflow.log_artifact(str(native_test_reasons), "native")
        for path, content in candidate.artifacts.items():
            _log_bytes(content, path)
        mlflow.set_tag("budget_misses", "; ".join(misses) or "none")
        mlflow.log_metrics(
            {
                **exported.parity,
                **latency,
                "onnx_size_mb": size_mb,
                "within_budget": float(not misses),
                "training_seconds": candidate.training_seconds,
            }
        )
        mlflow.log_params(
            {
                **budget.params(),
                "parity.max_difference": candidate.parity_max_difference,
                "parity.min_agreement": candidate.parity_min_agreement,
                "reasons": len(candidate.reasons),
            }
        )
        summary = (
            f"{candidate.name}: validation macro-F1 {figures['macro_f1']:.4f}, accuracy {figures['accuracy']:.4f}, "
            f"one tweet {latency['latency_single_p50_ratio']:.2f}x the reference "
            f"({latency['latency_single_ms_p50']:.2f} ms p50 on {machine()['machine.cpu']}), {size_mb:.1f} MB; "
            + ("within the serving budget" if not misses else f"outside the budget: {'; '.join(misses)}")
        )
        register(candidate, exported, summary)
        logger.info("%s", summary)
        return run.info.run_id


def run_vader(split: Split, data: DataOptions) -> str:
    """The rule-based baseline's validation figures (nothing to export)."""
    from ..families import vader

    with mlflow.start_run(run_name="vader-baseline") as run:
        mlflow.set_tags({"family": "vader", "variant": "baseline"})
        mlflow.log_params({**data.params(), **split.description(), "family": "vader", "variant": "baseline"})
        started = time.perf_counter()
        probabilities, predicted = vader.score(split.validation["text"].tolist())
        mlflow.log_metric("inference_seconds", time.perf_counter() - started)
        log_evaluation("val", split.validation["sentiment"].tolist(), probabilities, list(LABELS), predicted)
        return run.info.run_id


def run_reason_baseline(split: Split, data: DataOptions) -> str | None:
    """The TF-IDF logistic regression baseline of the reason head, on the same labels (nothing to export). A
    reason with under 5 labelled training tweets cannot be cross-validated: the baseline leaves it out (never
    the case on the full corpus, where the thinnest has 37). None when fewer than 50 labelled tweets are left."""
    from ..families.classic import reason_baseline

    texts = split.train["text"].tolist()
    codes = reason_codes(texts)
    counts = np.bincount(codes[codes >= 0], minlength=len(REASONS))
    codes = np.where(np.isin(codes, np.flatnonzero(counts < 5)), -1, codes)
    if (codes >= 0).sum() < 50 or len(np.unique(codes[codes >= 0])) < 2:
        return None
    with mlflow.start_run(run_name="reason-baseline-tfidf-logreg") as run:
        mlflow.set_tags({"family": "reason-baseline", "variant": "tfidf-logreg"})
        mlflow.log_params(
            {
                **data.params(),
                **split.description(),
                "reasons.sha256": reasons_fingerprint(),
                "family": "reason-baseline",
                "reasons_left_out": ", ".join(REASONS[code] for code in np.flatnonzero(counts < 5)) or "none",
            }
        )
        started = time.perf_counter()
        probabilities = reason_baseline(texts, codes, len(REASONS), data.seed)
        mlflow.log_metric("training_seconds", time.perf_counter() - started)
        validation = split.validation["text"].tolist()
        log_reasons("val", validation, probabilities(validation), list(REASONS))
        return run.info.run_id
