"""One training session: data -> candidates of every family -> evaluation, ONNX export with parity, serving
latency -> MLflow -> champion -> models/.

Every candidate goes through `run_candidate`, whatever its family, so every row of the comparison has the
same figures. The test part is used once, by `export_champion`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import tempfile
import time
from pathlib import Path

import mlflow
import mlflow.onnx
import numpy as np
import onnx
import pandas as pd
from mlflow.tracking import MlflowClient

from tweet_sentiment.model import SentimentModel

from . import evaluate, export, tracking
from .candidate import Candidate
from .data import LABELS, SEED, Split, load_tweets, sample_tweets, split_tweets

# family -> (module, trainer, variants). Modules are imported on use: TensorFlow and torch load slowly.
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "logreg": ("classic", "train_logreg", ("lemmatize", "stem")),
    "gaussian-nb": ("classic", "train_gaussian_nb", ("lemmatize", "stem")),
    "xgboost": ("classic", "train_xgboost", ("lemmatize", "stem")),
    "bilstm-word2vec": ("lstm", "train_word2vec", ("frozen", "fine-tuned")),
    "bilstm-glove": ("lstm", "train_glove", ("frozen", "fine-tuned")),
    "bert-minilm": ("bert", "train", ("fine-tuned",)),  # also yields its int8 quantised twin
}
BASELINES = ("vader",)
QUICK_SAMPLE = 4000


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a model must meet to be served (documented settings, overridable by environment)."""

    p95_ms: float = float(os.environ.get("SERVING_P95_BUDGET_MS", 20))  # single tweet, ONNX Runtime, 1 thread
    size_mb: float = float(os.environ.get("SERVING_SIZE_BUDGET_MB", 100))  # ONNX file and assets


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """Which tweets, and how they are split. Logged with every run so that export can rebuild the split."""

    source: str = "default"
    path: str | None = None
    text_column: str = "text"
    label_column: str = "sentiment"
    encoding: str | None = None
    train_on_all: bool = True  # default corpus: add the non-airline tweets to the airline training part
    sample: int | None = None  # stratified sample of the corpus, for quick runs
    seed: int = SEED

    def params(self) -> dict[str, str]:
        return {f"data.{name}": str(value) for name, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_params(cls, params: dict[str, str]) -> "DataOptions":
        values = {}
        for field in dataclasses.fields(cls):
            raw = params.get(f"data.{field.name}", "None")
            if raw == "None":
                values[field.name] = None
            elif field.name == "train_on_all":
                values[field.name] = raw == "True"
            elif field.name in ("sample", "seed"):
                values[field.name] = int(raw)
            else:
                values[field.name] = raw
        return cls(**values)


def load_split(options: DataOptions) -> Split:
    tweets = load_tweets(options.source, Path(options.path) if options.path else None,
                         text_column=options.text_column, label_column=options.label_column,
                         encoding=options.encoding)
    if options.sample:
        tweets = sample_tweets(tweets, options.sample, options.seed)
    return split_tweets(tweets, evaluate_on_airline=options.source == "default",
                        train_on_all=options.train_on_all, seed=options.seed)


def labels_of(split: Split) -> list[str]:
    return [label for label in LABELS if label in set(split.train["sentiment"])]


def selected(only: list[str] | None) -> list[tuple[str, str]]:
    """(family, variant) pairs named by `only` (families or family-variant names); all when None."""
    pairs = [(family, variant) for family, (_, _, variants) in FAMILIES.items() for variant in variants]
    if not only:
        return pairs
    unknown = [name for name in only if name not in FAMILIES and name not in BASELINES
               and name not in {f"{family}-{variant}" for family, variant in pairs}]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {sorted(FAMILIES) + list(BASELINES)} "
                         "or family-variant names such as logreg-stem")
    return [(family, variant) for family, variant in pairs if family in only or f"{family}-{variant}" in only]


def serving_latency(model: SentimentModel, texts: list[str], samples: int) -> dict[str, float]:
    """What the service would see: ONNX Runtime with the shared preprocessing, one thread."""
    single = []
    for text in (texts * (samples // max(len(texts), 1) + 1))[:samples]:
        started = time.perf_counter()
        model.probabilities([text])
        single.append((time.perf_counter() - started) * 1000)
    batch_texts = (texts * (64 // max(len(texts), 1) + 1))[:64]
    batch = []
    for _ in range(5):
        started = time.perf_counter()
        model.probabilities(batch_texts)
        batch.append((time.perf_counter() - started) * 1000)
    return {"latency_single_ms_p50": float(np.percentile(single, 50)),
            "latency_single_ms_p95": float(np.percentile(single, 95)),
            "latency_batch64_ms_p50": float(np.percentile(batch, 50))}


def _log_evaluation(prefix: str, gold: list[str], probabilities: np.ndarray, labels: list[str],
                    predicted: list[str] | None = None) -> dict[str, float]:
    figures = evaluate.metrics(gold, probabilities, labels, predicted)
    mlflow.log_metrics({f"{prefix}_{name}": value for name, value in figures.items()})
    mlflow.log_text(evaluate.report(gold, probabilities, labels, predicted), f"{prefix}/classification_report.txt")
    with tempfile.TemporaryDirectory() as folder:
        for path in evaluate.save_plots(gold, probabilities, labels, Path(folder), prefix, predicted):
            mlflow.log_artifact(str(path), prefix)
    return figures


def run_candidate(candidate: Candidate, split: Split, data: DataOptions, budget: Budget,
                  latency_samples: int = 200) -> str:
    """Evaluate on validation, export with parity, time the served graph, and register one candidate."""
    validation_texts, gold = split.validation["text"].tolist(), split.validation["sentiment"].tolist()
    with mlflow.start_run(run_name=candidate.name) as run:
        mlflow.set_tags({"family": candidate.family, "variant": candidate.variant})
        mlflow.log_params({**data.params(), **split.description(), "family": candidate.family,
                           "variant": candidate.variant, "input_kind": candidate.input_kind,
                           **{f"text.{key}": value for key, value in candidate.text_config.to_dict().items()},
                           **{f"model.{key}": value for key, value in candidate.params.items()}})
        mlflow.log_dict(candidate.text_config.to_dict(), "text_config.json")
        if candidate.search:
            mlflow.log_table(pd.DataFrame(candidate.search), "search/candidates.json")
        native = candidate.predict_proba(validation_texts)
        figures = _log_evaluation("val", gold, native, candidate.labels)
        with tempfile.TemporaryDirectory() as folder:
            folder_path = Path(folder)
            try:
                manifest_path, check = export.write_checked(
                    candidate.onnx, {"name": tracking.MODEL_NAME, "version": f"run-{run.info.run_id[:8]}",
                                     "labels": candidate.labels, "preprocessing": candidate.text_config,
                                     "input_kind": candidate.input_kind, "mlflow_run_id": run.info.run_id,
                                     "test_metrics": {}, "family": candidate.family,
                                     "sequence_length": candidate.sequence_length},
                    validation_texts, native, folder_path / "onnx", stem="model", assets=candidate.assets,
                    max_difference=candidate.parity_max_difference, min_agreement=candidate.parity_min_agreement)
            except export.ExportError as error:
                # The comparison goes on; this candidate is recorded but never registered nor served.
                mlflow.set_tag("export_error", str(error)[:5000])
                mlflow.log_metric("within_budget", 0.0)
                print(f"{candidate.name}: not exported: {error}", flush=True)
                return run.info.run_id
            served = SentimentModel.load(manifest_path)
            latency = serving_latency(served, validation_texts, latency_samples)
            size_mb = sum(path.stat().st_size for path in (folder_path / "onnx").iterdir()) / 1e6
            # The test part's native probabilities, kept unread for the champion's parity check at export.
            np.save(folder_path / "test_probabilities.npy", candidate.predict_proba(split.test["text"].tolist()))
            mlflow.log_artifacts(str(folder_path / "onnx"), "onnx")
            mlflow.log_artifact(str(folder_path / "test_probabilities.npy"), "native")
        within = latency["latency_single_ms_p95"] <= budget.p95_ms and size_mb <= budget.size_mb
        mlflow.log_metrics({**check, **latency, "onnx_size_mb": size_mb, "within_budget": float(within),
                            "training_seconds": candidate.training_seconds})
        mlflow.log_params({"budget.p95_ms": budget.p95_ms, "budget.size_mb": budget.size_mb,
                           "parity.max_difference": candidate.parity_max_difference,
                           "parity.min_agreement": candidate.parity_min_agreement})
        if candidate.log_native:
            candidate.log_native()
        mlflow.onnx.log_model(onnx.load_from_string(candidate.onnx), name="model",
                              registered_model_name=tracking.MODEL_NAME, save_as_external_data=False,
                              pip_requirements=["onnxruntime"])
        print(f"{candidate.name}: validation macro-F1 {figures['macro_f1']:.4f}, accuracy {figures['accuracy']:.4f},"
              f" p95 {latency['latency_single_ms_p95']:.2f} ms, {size_mb:.1f} MB", flush=True)
        return run.info.run_id


def run_vader(split: Split, data: DataOptions) -> str:
    from . import vader

    with mlflow.start_run(run_name="vader-baseline") as run:
        mlflow.set_tags({"family": "vader", "variant": "baseline"})
        mlflow.log_params({**data.params(), **split.description(), "family": "vader", "variant": "baseline"})
        started = time.perf_counter()
        probabilities, predicted = vader.score(split.validation["text"].tolist())
        mlflow.log_metric("inference_seconds", time.perf_counter() - started)
        _log_evaluation("val", split.validation["sentiment"].tolist(), probabilities, list(LABELS), predicted)
        return run.info.run_id


def candidates(split: Split, family: str, variant: str, quick: bool, seed: int) -> list[Candidate]:
    module_name, trainer, _ = FAMILIES[family]
    module = importlib.import_module(f"training.{module_name}")
    result = getattr(module, trainer)(split, variant, labels_of(split), quick, seed)
    return result if isinstance(result, list) else [result]


def export_champion(split: Split, models_dir: Path) -> Path:
    """Evaluate the champion on the test part (its first and only use) through the serving package, check
    it against the native model's test probabilities recorded at training, and write it to `models_dir`."""
    version = tracking.champion()
    client = MlflowClient()
    run = client.get_run(version.run_id)
    if run.data.params.get("split.test.sha256") != split.description()["split.test.sha256"]:
        raise tracking.TrackingError("the champion was not trained on this split (test part hashes differ): "
                                     "export it with the data options it was trained with")
    texts, gold = split.test["text"].tolist(), split.test["sentiment"].tolist()
    with tempfile.TemporaryDirectory() as folder:
        onnx_dir = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="onnx",
                                                            dst_path=folder))
        native = np.load(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="native/test_probabilities.npy", dst_path=folder))
        served_model = SentimentModel.load(onnx_dir / "model.json")
        manifest = served_model.manifest
        served = served_model.probabilities(texts)
        test_metrics = {name: round(value, 6) for name, value in evaluate.metrics(gold, served, manifest.labels).items()}
        assets = {role: (onnx_dir / asset["file"]).read_bytes() for role, asset in manifest.assets.items()}
        manifest_path, check = export.write_checked(
            (onnx_dir / manifest.onnx_file).read_bytes(),
            {"name": tracking.MODEL_NAME, "version": str(version.version), "labels": manifest.labels,
             "preprocessing": manifest.preprocessing, "input_kind": manifest.input_kind,
             "mlflow_run_id": run.info.run_id, "test_metrics": test_metrics, "family": manifest.family,
             "sequence_length": manifest.sequence_length},
            texts, native, models_dir, assets=assets,
            max_difference=float(run.data.params.get("parity.max_difference", export.MAX_PROBABILITY_DIFFERENCE)),
            min_agreement=float(run.data.params.get("parity.min_agreement", 1.0)))
    with mlflow.start_run(run_id=run.info.run_id):
        _log_evaluation("test", gold, served, manifest.labels)
        mlflow.log_metrics({f"test_{name}": value for name, value in check.items()})
        for path in models_dir.glob(f"{export.CHAMPION_STEM}.*"):
            mlflow.log_artifact(str(path), "champion")
    # Files of an earlier champion that this one does not use (a vocabulary, a tokenizer) go.
    current = {manifest_path.name, *(asset["file"] for asset in json.loads(manifest_path.read_text())["assets"].values()),
               f"{export.CHAMPION_STEM}.onnx"}
    for path in models_dir.glob(f"{export.CHAMPION_STEM}.*"):
        if path.name not in current:
            path.unlink()
    return manifest_path


def train(data: DataOptions, store: Path, models_dir: Path, only: list[str] | None = None, quick: bool = False,
          budget: Budget = Budget(), latency_samples: int = 200) -> dict:
    """The whole session; returns a summary for the command line."""
    uri = tracking.configure(store)
    split = load_split(data)
    run_ids = []
    for family, variant in selected(only):
        for candidate in candidates(split, family, variant, quick, data.seed):
            run_ids.append(run_candidate(candidate, split, data, budget, latency_samples))
    if not only or "vader" in only:
        run_ids.append(run_vader(split, data))
    summary = {"tracking_uri": uri, "split": {name: len(part) for name, part in split.parts().items()}, "runs": {}}
    for run_id in run_ids:
        run = MlflowClient().get_run(run_id)
        summary["runs"][run.info.run_name] = {"run_id": run_id, "val_macro_f1": run.data.metrics["val_macro_f1"],
                                              "val_accuracy": run.data.metrics["val_accuracy"],
                                              "within_budget": run.data.metrics.get("within_budget")}
    if any(run["within_budget"] is not None for run in summary["runs"].values()):
        champion = tracking.promote_champion(split.description()["split.validation.sha256"])
        manifest_path = export_champion(split, models_dir)
        summary["champion"] = {"version": champion.version, "run_id": champion.run_id,
                               "name": MlflowClient().get_run(champion.run_id).info.run_name}
        summary["manifest"] = str(manifest_path)
        summary["test_metrics"] = json.loads(manifest_path.read_text())["test_metrics"]
    return summary


def export_from_registry(store: Path, models_dir: Path) -> Path:
    """Re-export the current champion, rebuilding its split from the data options logged with its run."""
    tracking.configure(store)
    run = MlflowClient().get_run(tracking.champion().run_id)
    return export_champion(load_split(DataOptions.from_params(run.data.params)), models_dir)
