"""Champion / challenger retraining from verified feedback, behind a gate that cannot be fooled.

retrain: verified feedback (training/promotion/feedback.py) -> cleaned rows, a share held out (by a hash of the text) to
judge -> a challenger of the champion's family trained on the original training part plus the feedback -> registered as
`@challenger` -> the gate (training/promotion/gate.py) -> `@champion` and models/ only when every check passes ->
reports/promotion.md either way (training/promotion/report.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from .. import tracking
from ..config import Budget, DataOptions, hyperparameters, split_of_run
from ..data import Split
from ..families import FAMILIES, Family
from ..pipeline.runner import run_candidate
from .champion import promote
from .feedback import usable_feedback
from .gate import GateSettings, gate
from .report import Decision, write_report
from .session import labels_of

logger = logging.getLogger(__name__)


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
    rows = feedback.reindex(columns=["text", "sentiment", "reason"], fill_value="").assign(airline=True)
    augmented = dataclasses.replace(split, train=pd.concat([split.train, rows], ignore_index=True))
    labels = labels_of(split)
    params = hyperparameters(family.hyperparameters, quick, variant)
    candidates = family.fit(augmented, variant, labels, params, data.seed)
    candidate = next((fitted for fitted in candidates if fitted.variant == champion_variant), candidates[0])
    candidate.params = {**candidate.params, "retrained_from_feedback": len(feedback)}
    return run_candidate(candidate, augmented, data, budget)


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
    data, split = split_of_run(champion_run)
    rows, counts = feedback
    train_rows, holdout = usable_feedback(rows, split, counts, settings.holdout_share)
    family_name = family or champion_run.data.tags.get("family", "")
    if family_name not in FAMILIES:
        raise ValueError(f"no family {family_name!r} to retrain: choose one of {sorted(FAMILIES)} (--family)")
    logger.info("feedback: %s", dict(counts))
    if len(train_rows) == 0:
        decision = Decision(
            False, ["no usable feedback to train on"], str(champion.version), None, {}, dict(counts), {}
        )
    else:
        run_id = train_challenger(champion_run, split, train_rows, data, family_name, quick, budget)
        verdict = gate(champion, run_id, split, holdout, settings)
        decision = Decision(
            verdict.passed,
            verdict.reasons,
            str(champion.version),
            verdict.challenger_version,
            verdict.figures,
            dict(counts),
            verdict.behaviour,
        )
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
