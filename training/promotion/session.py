"""One training session: data -> candidates of every selected family -> the runner (evaluation, ONNX export
with parity, serving latency, registry) -> the champion -> models/."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from tweet_sentiment.labels import LABELS

from .. import tracking
from ..config import RUN_KIND, Budget, DataOptions, hyperparameters, load_split
from ..data import Split
from ..families import selected
from ..pipeline.runner import run_candidate, run_reason_baseline, run_vader
from .champion import export_champion, promote_best

logger = logging.getLogger(__name__)


def labels_of(split: Split) -> list[str]:
    return [label for label in LABELS if label in set(split.train["sentiment"])]


def run_training_session(
    data: DataOptions,
    store: Path,
    models_dir: Path,
    only: list[str] | None = None,
    quick: bool = False,
    budget: Budget | None = None,
    latency_samples: int = 200,
) -> dict[str, Any]:
    """Train and compare the selected families, promote the best within budget and export it; returns a
    summary for the command line."""
    budget = budget or Budget.from_environment()
    uri = tracking.configure(store)
    split = load_split(data)
    labels = labels_of(split)
    run_ids = []
    for family, variant in selected(only):
        logger.info("fitting %s-%s", family.name, variant)
        params = hyperparameters(family.hyperparameters, quick, variant)
        for candidate in family.fit(split, variant, labels, params, data.seed):
            candidate.tags = {**candidate.tags, RUN_KIND: "quick" if quick else "full"}
            run_ids.append(run_candidate(candidate, split, data, budget, latency_samples))
    if not only or "vader" in only:
        run_ids.append(run_vader(split, data))
    summary: dict[str, Any] = {
        "tracking_uri": uri,
        "split": {name: len(part) for name, part in split.parts().items()},
        "runs": {},
    }
    client = MlflowClient()
    for run_id in run_ids:
        run = client.get_run(run_id)
        summary["runs"][run.info.run_name] = {
            "run_id": run_id,
            "val_macro_f1": run.data.metrics["val_macro_f1"],
            "val_accuracy": run.data.metrics["val_accuracy"],
            "within_budget": run.data.metrics.get("within_budget"),
            "reasons": tracking.answers_reasons(run),
        }
    reasons_trained = any(run["reasons"] for run in summary["runs"].values())
    summary["reason_baseline"] = run_reason_baseline(split, data) if reasons_trained else None
    if any(run["within_budget"] is not None for run in summary["runs"].values()):
        champion = promote_best(str(split.description()["split.validation.sha256"]))
        manifest_path = export_champion(split, models_dir)
        summary["champion"] = {
            "version": champion.version,
            "run_id": champion.run_id,
            "name": tracking.run_of(champion).info.run_name,
        }
        summary["manifest"] = str(manifest_path)
        summary["test_metrics"] = json.loads(manifest_path.read_text())["test_metrics"]
    return summary
