"""Champion / challenger retraining from verified feedback, behind a gate that cannot be fooled.

retrain: verified feedback -> cleaned rows (duplicates and every tweet of the frozen validation and test parts
dropped) -> split by time into the rows that train and a held-out slice that judges -> a challenger of the
champion's family trained on the original training part plus the feedback -> registered as `@challenger` ->
the gate -> `@champion` and models/ only when every check passes -> reports/promotion.md either way.

The gate uses MLflow's model validation (mlflow.models.evaluate, then mlflow.validate_evaluation_results with
MetricThreshold), on figures computed through the serving package (ONNX Runtime, the shared text processing):
- frozen airline test part: macro-F1 and accuracy may not drop by more than RETRAIN_MAX_TEST_DROP;
- held-out feedback: accuracy and macro-F1 at least the champion's (what the feedback was for);
- behavioural suite: no more failures than the champion, check by check;
- ONNX parity and the serving budget (the runner's own checks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
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
from tweet_sentiment.text import TextConfig, tokens

from . import tracking
from .behaviour import behaviour_failures
from .champion import promote, set_alias
from .config import Budget, DataOptions, hyperparameters, load_split
from .data import Split
from .families import FAMILIES, Family
from .feedback_export import training_row
from .runner import run_candidate
from .session import labels_of

logger = logging.getLogger(__name__)

CHALLENGER = "challenger"
# Feedback and evaluation tweets are compared on this form: case, handles, URLs and punctuation do not make
# a tweet new.
COMPARISON_TEXT = TextConfig(remove_stopwords=False, normalisation="none")


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
class Decision:
    promoted: bool
    reasons: list[str]  # why it was refused; empty when promoted
    champion_version: str
    challenger_version: str | None
    figures: dict[str, dict[str, float]]  # check -> {"champion": ..., "challenger": ..., "threshold": ...}
    feedback_counts: dict[str, int]
    behaviour: dict[str, dict[str, int]]  # check -> {"champion": failures, "challenger": failures}

    def summary(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def normalised(text: str) -> str:
    return " ".join(tokens(text, COMPARISON_TEXT))


def feedback_rows(entities: Iterable[dict[str, Any]]) -> tuple[pd.DataFrame, Counter[str]]:
    """Verified feedback with its right label (the user's when the prediction was wrong, the prediction's when
    right), oldest first; counts of the rows kept and dropped, by reason."""
    counts: Counter[str] = Counter()
    rows = []
    for entity in entities:
        row, outcome = training_row(entity)
        counts["verified" if row is not None else f"dropped: {outcome}"] += 1
        if row is not None:
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["text", "sentiment", "prediction_id", "received_at"])
    return frame.sort_values(["received_at", "prediction_id"], kind="stable").reset_index(drop=True), counts


def feedback_from_csv(path: Path) -> tuple[pd.DataFrame, Counter[str]]:
    """An exported feedback CSV (python -m training feedback-export): its rows were verified when exported."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"text", "sentiment", "prediction_id", "received_at"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{path.name} lacks the columns {sorted(missing)}: export it with `python -m training feedback-export`"
        )
    rows = frame[["text", "sentiment", "prediction_id", "received_at"]]
    counts: Counter[str] = Counter({"verified": len(rows)})
    return rows.sort_values(["received_at", "prediction_id"], kind="stable").reset_index(drop=True), counts


def usable_feedback(
    feedback: pd.DataFrame, split: Split, counts: Counter[str], holdout_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feedback rows that may train and those held out to judge, after dropping duplicates (the latest
    feedback on a tweet wins) and every tweet of the frozen validation and test parts (feedback never leaks
    into evaluation). The held-out slice is the latest `holdout_share`, split by time before any training."""
    frozen = {normalised(text) for part in (split.validation, split.test) for text in part["text"]}
    keys = feedback["text"].map(normalised)
    in_evaluation = keys.isin(frozen)
    counts["dropped: in the frozen validation or test part"] += int(in_evaluation.sum())
    kept = feedback[~in_evaluation].assign(key=keys[~in_evaluation])
    latest = kept.drop_duplicates("key", keep="last")
    counts["dropped: duplicate of a later feedback"] += len(kept) - len(latest)
    latest = latest.drop(columns="key")
    held_out = int(round(len(latest) * holdout_share)) if len(latest) >= 5 else 0
    train, holdout = latest.iloc[: len(latest) - held_out], latest.iloc[len(latest) - held_out :]
    counts["used: training"] = len(train)
    counts["used: held-out judge"] = len(holdout)
    return train, holdout


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


def recipe_variant(champion_variant: str, family: Family) -> str:
    """The variant whose fit makes a challenger by the champion's own recipe: an int8 champion
    ("distilled-int8") is the int8 twin of its variant's fit (a distilled student reads the teacher's cache)."""
    variant = champion_variant.removesuffix("-int8")
    return variant if variant in family.variants else family.variants[0]


def train_challenger(
    champion_run: Any,
    split: Split,
    feedback: pd.DataFrame,
    data: DataOptions,
    family_name: str,
    quick: bool,
    budget: Budget,
) -> str:
    """A challenger of `family_name` trained on the original training part plus the feedback; its run id."""
    family = FAMILIES[family_name]
    champion_variant = champion_run.data.tags.get("variant", "")
    variant = recipe_variant(champion_variant, family)
    augmented = dataclasses.replace(
        split, train=pd.concat([split.train, feedback[["text", "sentiment"]].assign(airline=True)], ignore_index=True)
    )
    labels = labels_of(split)
    params = hyperparameters(family.hyperparameters, quick, variant)
    candidates = family.fit(augmented, variant, labels, params, data.seed)
    candidate = next((fitted for fitted in candidates if fitted.variant == champion_variant), candidates[0])
    candidate.params = {**candidate.params, "retrained_from_feedback": len(feedback)}
    return run_candidate(candidate, augmented, data, budget)


def gate(
    champion: ModelVersion,
    challenger_run_id: str,
    split: Split,
    holdout: pd.DataFrame,
    settings: GateSettings,
    decision: Decision,
) -> None:
    """Every check of the gate, each failure a reason in `decision`."""
    run = MlflowClient().get_run(challenger_run_id)
    if run.data.tags.get("export_error"):
        decision.reasons.append(f"ONNX parity failed: {run.data.tags['export_error'][:300]}")
        return
    if run.data.metrics.get("within_budget") != 1.0:
        decision.reasons.append(f"over the serving budget: {run.data.tags.get('budget_misses', 'see its run')}")
    challenger = _challenger_version(challenger_run_id)
    decision.challenger_version = str(challenger.version)
    set_alias(challenger, CHALLENGER)
    with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_id=challenger_run_id):
        champion_model, challenger_model = _served(champion, Path(folder)), _served(challenger, Path(folder))
        test_champion = mlflow_evaluation(champion_model, split.test, "champion on the test part")
        test_challenger = mlflow_evaluation(challenger_model, split.test, "challenger on the test part")
        decision.reasons += validate(
            "frozen test part",
            test_challenger,
            {
                metric: float(test_champion.metrics[metric]) - settings.max_test_drop
                for metric in ("macro_f1", "accuracy_score")
            },
            decision.figures,
            test_champion,
        )
        if len(holdout):
            held_champion = mlflow_evaluation(champion_model, holdout, "champion on held-out feedback")
            held_challenger = mlflow_evaluation(challenger_model, holdout, "challenger on held-out feedback")
            decision.reasons += validate(
                "held-out feedback",
                held_challenger,
                {metric: float(held_champion.metrics[metric]) for metric in ("macro_f1", "accuracy_score")},
                decision.figures,
                held_champion,
            )
        else:
            decision.reasons.append("no held-out feedback to judge the challenger on: collect more feedback")
        before, after = behaviour_failures(champion_model), behaviour_failures(challenger_model)
        for check in before:
            decision.behaviour[check] = {"champion": len(before[check]), "challenger": len(after[check])}
            if len(after[check]) > len(before[check]):
                decision.reasons.append(
                    f"behaviour, {check}: {len(after[check])} failures against the champion's "
                    f"{len(before[check])}, e.g. {after[check][0]}"
                )


def _challenger_version(run_id: str) -> ModelVersion:
    versions = MlflowClient().search_model_versions(f"name='{tracking.MODEL_NAME}' and run_id='{run_id}'")
    if not versions:
        raise tracking.TrackingError(f"the challenger's run {run_id} registered no model version")
    return versions[0]


def retrain(
    store: Path,
    models_dir: Path,
    feedback: tuple[pd.DataFrame, Counter[str]],
    report: Path,
    family: str | None = None,
    quick: bool = False,
    settings: GateSettings | None = None,
    budget: Budget | None = None,
) -> Decision:
    """The whole loop; the decision is written to `report` and to the challenger's MLflow run."""
    settings = settings or GateSettings.from_environment()
    budget = budget or Budget.from_environment()
    tracking.configure(store)
    champion = tracking.champion()
    champion_run = tracking.run_of(champion)
    data = DataOptions.from_params(champion_run.data.params)
    split = load_split(data)
    rows, counts = feedback
    train_rows, holdout = usable_feedback(rows, split, counts, settings.holdout_share)
    family_name = family or champion_run.data.tags.get("family", "")
    if family_name not in FAMILIES:
        raise ValueError(f"no family {family_name!r} to retrain: choose one of {sorted(FAMILIES)} (--family)")
    decision = Decision(False, [], str(champion.version), None, {}, dict(counts), {})
    logger.info("feedback: %s", dict(counts))
    if len(train_rows) == 0:
        decision.reasons.append("no usable feedback to train on")
    else:
        run_id = train_challenger(champion_run, split, train_rows, data, family_name, quick, budget)
        gate(champion, run_id, split, holdout, settings, decision)
        decision.promoted = not decision.reasons
        with mlflow.start_run(run_id=run_id):
            mlflow.set_tags(
                {
                    "retrain.decision": "promoted" if decision.promoted else "refused",
                    "retrain.champion_version": decision.champion_version,
                }
            )
            mlflow.log_params({f"feedback.{reason}": count for reason, count in counts.items()})
            mlflow.log_dict(decision.summary(), "promotion/decision.json")
        if decision.promoted:
            promote(int(decision.challenger_version or 0), store, models_dir)
    write_report(decision, report, settings)
    return decision


def write_report(decision: Decision, report: Path, settings: GateSettings) -> None:
    verdict = (
        f"**Promoted**: version {decision.challenger_version} is the champion and is exported to models/."
        if decision.promoted
        else f"**Refused**: version {decision.champion_version} stays the champion."
    )
    lines = [
        "# Promotion decision",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `python -m training retrain`: champion version "
        f"{decision.champion_version}, challenger version {decision.challenger_version or '(none)'}.",
        "",
        verdict,
        "",
    ]
    if decision.reasons:
        lines += ["Reasons:", ""] + [f"- {reason}" for reason in decision.reasons] + [""]
    lines += [
        "## Figures (through the serving package)",
        "",
        f"Thresholds: the frozen test part may not drop by more than {settings.max_test_drop}; on the "
        "held-out feedback (the latest "
        f"{settings.holdout_share:.0%}, never trained on) the challenger must do at least as well.",
        "",
        "| check | champion | challenger | threshold |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {values['champion']:.4f} | {values['challenger']:.4f} | {values['threshold']:.4f} |"
        for name, values in decision.figures.items()
    ]
    lines += ["", "| behaviour check | champion failures | challenger failures |", "|---|---|---|"]
    lines += [
        f"| {check} | {values['champion']} | {values['challenger']} |" for check, values in decision.behaviour.items()
    ]
    lines += ["", "## Feedback", "", "| rows | count |", "|---|---|"]
    lines += [f"| {reason} | {count} |" for reason, count in sorted(decision.feedback_counts.items())]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
