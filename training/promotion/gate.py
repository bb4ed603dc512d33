"""The gate between a challenger and the champion, built on MLflow's model validation (mlflow.models.evaluate,
then mlflow.validate_evaluation_results with MetricThreshold) on figures computed through the serving package
(ONNX Runtime, the shared text processing):
- frozen airline test part: macro-F1 and accuracy may not drop by more than RETRAIN_MAX_TEST_DROP;
- held-out feedback (what the feedback was for): the challenger not measurably worse than the champion, by an
  exact paired test (McNemar's, one-sided, at PAIRED_ALPHA) on the tweets one gets right and the other wrong;
  "at least the champion's accuracy" was decided by one tweet of the held-out slice; the same test on the
  complaint reasons of the held-out tweets whose reason staff gave (`reason_regressions`);
- behavioural suite: no check, and not the suite as a whole, measurably worse than the champion's, by an exact
  paired test (McNemar's again) on the cases one fails and the other passes: one
  borderline tweet that flips cannot refuse a challenger (it takes at least five new failures),
  a challenger that breaks a check does not pass;
- ONNX parity and the serving budget (the runner's own checks, read from the challenger's run).
"""

from __future__ import annotations

import dataclasses
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
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from tweet_sentiment.model import SentimentModel

from .. import tracking
from ..data import Split
from ..pipeline.behaviour import Outcomes, behaviour_outcomes
from ..settings import DEFAULTS, TrainingSettings
from .champion import set_alias

CHALLENGER = "challenger"
# A regression (held-out feedback, behavioural suite) is refused when a one-sided exact paired test says it is more
# than chance: with nothing repaired, 5 new failures give p = 0.031 (refused), 4 give 0.0625 (not).
PAIRED_ALPHA = 0.05
PAIRED = float("nan")  # the threshold column of a check decided by the paired test, not by a fixed figure


@dataclasses.dataclass(frozen=True)
class GateSettings:
    max_test_drop: float = DEFAULTS.max_test_drop  # macro-F1 and accuracy on the frozen test part
    holdout_share: float = DEFAULTS.holdout_share  # of the feedback's tweets (by a hash of the text), to judge

    @classmethod
    def from_environment(cls, settings: TrainingSettings | None = None) -> GateSettings:
        """The thresholds the settings name (RETRAIN_MAX_TEST_DROP, RETRAIN_HOLDOUT_SHARE), parsed now when none
        are given."""
        settings = settings or TrainingSettings.from_environment()
        return cls(max_test_drop=settings.max_test_drop, holdout_share=settings.holdout_share)


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
            verdict.reasons += held_out_regressions(champion_model, challenger_model, holdout, verdict.figures)
            verdict.reasons += reason_regressions(champion_model, challenger_model, holdout)
        else:
            verdict.reasons.append("no held-out feedback to judge the challenger on: collect more feedback")
        before, after = behaviour_outcomes(champion_model), behaviour_outcomes(challenger_model)
        for check in before:
            verdict.behaviour[check] = {
                "champion": sum(failure is not None for failure in before[check].values()),
                "challenger": sum(failure is not None for failure in after[check].values()),
            }
        verdict.reasons += behaviour_regressions(before, after)
    return verdict


def held_out_regressions(
    champion: SentimentModel, challenger: SentimentModel, holdout: pd.DataFrame, figures: dict[str, dict[str, float]]
) -> list[str]:
    """The held-out feedback, tweet by tweet: refused when the challenger newly gets wrong measurably more tweets
    than it newly gets right (the figures of both are logged through MLflow's evaluation for the record)."""
    truth = holdout["sentiment"].tolist()
    answers = {}
    for name, model in (("champion", champion), ("challenger", challenger)):
        evaluation = mlflow_evaluation(model, holdout, f"{name} on held-out feedback")
        for metric in ("macro_f1", "accuracy_score"):
            figures.setdefault(f"held-out feedback {metric}", {"threshold": PAIRED})[name] = float(
                evaluation.metrics[metric]
            )
        answers[name] = [prediction.label for prediction in model.predict(holdout["text"].tolist())]
    broken = [
        f"{text!r}: {new}, expected {true}"
        for text, true, old, new in zip(holdout["text"], truth, answers["champion"], answers["challenger"], strict=True)
        if old == true != new
    ]
    repaired = [
        text
        for text, true, old, new in zip(holdout["text"], truth, answers["champion"], answers["challenger"], strict=True)
        if new == true != old
    ]
    return _regression("held-out feedback", broken, repaired, "tweets")


def reason_regressions(champion: SentimentModel, challenger: SentimentModel, holdout: pd.DataFrame) -> list[str]:
    """The held-out feedback whose complaint reason staff gave, tweet by tweet, as for sentiment: refused when
    the challenger newly misses measurably more reasons than it newly gets right (no reason answered counts as
    missed). A champion without a reason head misses them all: any challenger with one is no worse."""
    given = holdout[holdout.get("reason", pd.Series("", index=holdout.index)).fillna("") != ""]
    if given.empty:
        return []
    texts, truth = given["text"].tolist(), given["reason"].tolist()
    said = {
        name: [prediction.reason.label if prediction.reason else None for prediction in model.predict(texts)]
        for name, model in (("champion", champion), ("challenger", challenger))
    }
    pairs = list(zip(texts, truth, said["champion"], said["challenger"], strict=True))
    broken = [f"{text!r}: {new}, expected {true}" for text, true, old, new in pairs if old == true != new]
    repaired = [text for text, true, old, new in pairs if new == true != old]
    return _regression("held-out feedback reasons", broken, repaired, "tweets")


def behaviour_regressions(before: dict[str, Outcomes], after: dict[str, Outcomes]) -> list[str]:
    """Checks (and the whole suite) where the challenger is measurably worse than the champion: McNemar's exact
    test on the discordant cases, `broken` (it fails, the champion passes) against `repaired` (the reverse)."""
    reasons = []
    all_broken: list[str] = []
    all_repaired: list[str] = []
    for check, outcomes in before.items():
        now = after[check]
        broken = [str(now[case]) for case, failure in outcomes.items() if failure is None and now[case] is not None]
        repaired = [case for case, failure in outcomes.items() if failure is not None and now[case] is None]
        reasons += _regression(f"behaviour, {check}", broken, repaired)
        all_broken += broken
        all_repaired += repaired
    return reasons + _regression("behaviour, the whole suite", all_broken, all_repaired)


def _regression(check: str, broken: list[str], repaired: list[str], what: str = "cases") -> list[str]:
    """McNemar's exact test, one-sided: `broken` (the challenger is wrong where the champion was right) against
    `repaired` (the reverse); a reason when the challenger is measurably worse."""
    discordant = len(broken) + len(repaired)
    if not broken or binomtest(len(broken), discordant, 0.5, alternative="greater").pvalue >= PAIRED_ALPHA:
        return []
    return [
        f"{check}: {len(broken)} {what} newly wrong against {len(repaired)} repaired (paired exact test, "
        f"p < {PAIRED_ALPHA}), e.g. {broken[0]}"
    ]


def _challenger_version(run_id: str) -> ModelVersion:
    versions = MlflowClient().search_model_versions(f"name='{tracking.MODEL_NAME}' and run_id='{run_id}'")
    if not versions:
        raise tracking.TrackingError(f"the challenger's run {run_id} registered no model version")
    return versions[0]
