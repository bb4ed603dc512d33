"""The gate between a challenger and the champion, built on MLflow's model validation (mlflow.models.evaluate,
then mlflow.validate_evaluation_results with MetricThreshold) on figures computed through the serving package
(ONNX Runtime, the shared text processing):
- frozen airline test part: macro-F1 and accuracy may not drop by more than RETRAIN_MAX_TEST_DROP;
- held-out feedback: accuracy and macro-F1 at least the champion's (what the feedback was for);
- behavioural suite: no more failures than the champion, check by check;
- ONNX parity and the serving budget (the runner's own checks, read from the challenger's run).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.metrics import MetricValue
from mlflow.models import MetricThreshold, make_metric
from mlflow.models.evaluation.validation import ModelValidationFailedException
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from tweet_sentiment.model import SentimentModel

from . import tracking
from .behaviour import behaviour_failures
from .champion import set_alias
from .data import Split

CHALLENGER = "challenger"


@dataclasses.dataclass(frozen=True)
class GateSettings:
    max_test_drop: float = 0.005  # macro-F1 and accuracy on the frozen test part
    holdout_share: float = 0.2  # the latest feedback, kept out of training to judge the challenger

    @classmethod
    def from_environment(cls) -> GateSettings:
        return cls(
            max_test_drop=float(os.environ.get("RETRAIN_MAX_TEST_DROP", cls.max_test_drop)),
            holdout_share=float(os.environ.get("RETRAIN_HOLDOUT_SHARE", cls.holdout_share)),
        )


@dataclasses.dataclass
class Verdict:
    """What the gate found: why the challenger is refused (nothing when it passes), and the figures."""

    challenger_version: str | None = None
    reasons: list[str] = dataclasses.field(default_factory=list)
    figures: dict[str, dict[str, float]] = dataclasses.field(
        default_factory=dict
    )  # check -> champion, challenger, threshold
    behaviour: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)  # check -> failures of each

    @property
    def passed(self) -> bool:
        return not self.reasons


def _macro_f1(predictions: pd.Series, targets: pd.Series, metrics: dict[str, MetricValue]) -> MetricValue:
    return MetricValue(aggregate_results={"macro_f1": float(f1_score(targets, predictions, average="macro"))})


MACRO_F1 = make_metric(eval_fn=_macro_f1, greater_is_better=True, name="macro_f1")


def mlflow_evaluation(model: SentimentModel, tweets: pd.DataFrame, name: str) -> Any:
    """mlflow.models.evaluate of the served model (labels) on tweets with their true sentiment, in a run of its
    own nested in the active one."""
    data = pd.DataFrame({"text": tweets["text"].tolist(), "sentiment": tweets["sentiment"].tolist()})

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return np.array([prediction.label for prediction in model.predict(frame["text"].tolist())])

    with mlflow.start_run(run_name=f"gate: {name}", nested=True):
        return mlflow.models.evaluate(
            predict,
            data,
            targets="sentiment",
            model_type="classifier",
            extra_metrics=[MACRO_F1],
            evaluator_config={"log_model_explainability": False, "label_list": list(model.labels)},
        )


def validate(
    name: str, candidate: Any, thresholds: dict[str, float], figures: dict[str, dict[str, float]], baseline: Any
) -> list[str]:
    """MLflow's validation of `candidate` against absolute thresholds; returns the failures, explained."""
    for metric, threshold in thresholds.items():
        figures[f"{name} {metric}"] = {
            "champion": float(baseline.metrics[metric]),
            "challenger": float(candidate.metrics[metric]),
            "threshold": threshold,
        }
    try:
        mlflow.validate_evaluation_results(
            {
                metric: MetricThreshold(threshold=threshold, greater_is_better=True)
                for metric, threshold in thresholds.items()
            },
            candidate,
        )
    except ModelValidationFailedException as failure:
        return [f"{name}: {line.strip()}" for line in str(failure).splitlines() if line.strip()]
    return []


def _served(version: ModelVersion, folder: Path) -> SentimentModel:
    run = tracking.run_of(version)
    onnx_dir = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="onnx", dst_path=str(folder / str(version.version))
        )
    )
    return SentimentModel.load(onnx_dir / "model.json")


def gate(
    champion: ModelVersion,
    challenger_run_id: str,
    split: Split,
    holdout: pd.DataFrame,
    settings: GateSettings,
) -> Verdict:
    """Every check of the gate; each failure is a reason of the verdict."""
    verdict = Verdict()
    run = MlflowClient().get_run(challenger_run_id)
    if run.data.tags.get("export_error"):
        verdict.reasons.append(f"ONNX parity failed: {run.data.tags['export_error'][:300]}")
        return verdict
    if run.data.metrics.get("within_budget") != 1.0:
        verdict.reasons.append(f"over the serving budget: {run.data.tags.get('budget_misses', 'see its run')}")
    challenger = _challenger_version(challenger_run_id)
    verdict.challenger_version = str(challenger.version)
    set_alias(challenger, CHALLENGER)
    with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_id=challenger_run_id):
        champion_model, challenger_model = _served(champion, Path(folder)), _served(challenger, Path(folder))
        test_champion = mlflow_evaluation(champion_model, split.test, "champion on the test part")
        test_challenger = mlflow_evaluation(challenger_model, split.test, "challenger on the test part")
        verdict.reasons += validate(
            "frozen test part",
            test_challenger,
            {
                metric: float(test_champion.metrics[metric]) - settings.max_test_drop
                for metric in ("macro_f1", "accuracy_score")
            },
            verdict.figures,
            test_champion,
        )
        if len(holdout):
            held_champion = mlflow_evaluation(champion_model, holdout, "champion on held-out feedback")
            held_challenger = mlflow_evaluation(challenger_model, holdout, "challenger on held-out feedback")
            verdict.reasons += validate(
                "held-out feedback",
                held_challenger,
                {metric: float(held_champion.metrics[metric]) for metric in ("macro_f1", "accuracy_score")},
                verdict.figures,
                held_champion,
            )
        else:
            verdict.reasons.append("no held-out feedback to judge the challenger on: collect more feedback")
        before, after = behaviour_failures(champion_model), behaviour_failures(challenger_model)
        for check in before:
            verdict.behaviour[check] = {"champion": len(before[check]), "challenger": len(after[check])}
            if len(after[check]) > len(before[check]):
                verdict.reasons.append(
                    f"behaviour, {check}: {len(after[check])} failures against the champion's "
                    f"{len(before[check])}, e.g. {after[check][0]}"
                )
    return verdict


def _challenger_version(run_id: str) -> ModelVersion:
    versions = MlflowClient().search_model_versions(f"name='{tracking.MODEL_NAME}' and run_id='{run_id}'")
    if not versions:
        raise tracking.TrackingError(f"the challenger's run {run_id} registered no model version")
    return versions[0]
