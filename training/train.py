"""One training session: data -> text variants -> models tracked in MLflow -> champion -> ONNX in models/."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from mlflow.tracking import MlflowClient

from tweet_sentiment.text import TextConfig, preprocess, preprocess_many

from . import classic, evaluate, export, tracking
from .data import LABELS, SEED, Split, load_tweets, sample_tweets, split_tweets

VARIANTS = ("lemmatize", "stem")  # every classic model is trained on both


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


def _latency_ms(pipeline, texts: list[str], config: TextConfig) -> dict[str, float]:
    """Single-tweet latency of the native model, preprocessing included."""
    timings = []
    for text in texts:
        started = time.perf_counter()
        pipeline.predict_proba([preprocess(text, config)])
        timings.append((time.perf_counter() - started) * 1000)
    return {"latency_single_ms_p50": float(np.percentile(timings, 50)),
            "latency_single_ms_p95": float(np.percentile(timings, 95))}


def train_variant(split: Split, data: DataOptions, variant: str, latency_samples: int = 200) -> str:
    """Train, evaluate on validation and register one TF-IDF + logistic regression model; returns its run id."""
    config = TextConfig(normalisation=variant)
    labels = labels_of(split)
    train_texts = preprocess_many(split.train["text"].tolist(), config)
    validation_texts = preprocess_many(split.validation["text"].tolist(), config)
    with mlflow.start_run(run_name=f"{classic.FAMILY}-{variant}") as run:
        started = time.perf_counter()
        pipeline, best_params, candidates = classic.search(
            train_texts, split.train["sentiment"].tolist(), validation_texts, split.validation["sentiment"].tolist(),
            seed=data.seed)
        training_seconds = time.perf_counter() - started
        mlflow.set_tags({"family": classic.FAMILY, "variant": variant})
        mlflow.log_params({**data.params(), **split.description(), "family": classic.FAMILY,
                           **{f"text.{key}": value for key, value in config.to_dict().items()},
                           **{f"model.{key}": value for key, value in best_params.items()},
                           "model.search_candidates": len(candidates)})
        mlflow.log_dict(config.to_dict(), "text_config.json")
        mlflow.log_table(pd.DataFrame(candidates), "search/candidates.json")

        probabilities = pipeline.predict_proba(validation_texts)
        gold = split.validation["sentiment"].tolist()
        metrics = {f"val_{name}": value for name, value in evaluate.metrics(gold, probabilities, labels).items()}
        metrics["training_seconds"] = training_seconds
        metrics.update(_latency_ms(pipeline, split.validation["text"].tolist()[:latency_samples], config))
        mlflow.log_metrics(metrics)
        mlflow.log_text(evaluate.report(gold, probabilities, labels), "validation/classification_report.txt")
        with tempfile.TemporaryDirectory() as folder:
            for path in evaluate.save_plots(gold, probabilities, labels, Path(folder), "validation"):
                mlflow.log_artifact(str(path), "validation")
        # Requirements stated, not inferred: inference runs pip, which needs the network.
        mlflow.sklearn.log_model(pipeline, name="model", registered_model_name=tracking.MODEL_NAME,
                                 pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        return run.info.run_id


def export_champion(split: Split, models_dir: Path) -> Path:
    """Evaluate the champion on the test part (its first and only use), export it to ONNX with the parity
    check, and record the test figures and the exported files with its run."""
    version = tracking.champion()
    client = MlflowClient()
    run = client.get_run(version.run_id)
    description = split.description()
    if run.data.params.get("split.test.sha256") != description["split.test.sha256"]:
        raise tracking.TrackingError("the champion was not trained on this split (test part hashes differ): "
                                     "export it with the data options it was trained with")
    pipeline = mlflow.sklearn.load_model(f"models:/{tracking.MODEL_NAME}@{tracking.CHAMPION}")
    config = TextConfig.from_dict(mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/text_config.json"))
    labels = [str(label) for label in pipeline.classes_]
    texts, gold = split.test["text"].tolist(), split.test["sentiment"].tolist()
    native = pipeline.predict_proba(preprocess_many(texts, config))
    test_metrics = {name: round(value, 6) for name, value in evaluate.metrics(gold, native, labels).items()}
    manifest_path, check = export.write_checked(
        export.tfidf_pipeline_to_onnx(pipeline),
        {"name": tracking.MODEL_NAME, "version": str(version.version), "labels": labels, "preprocessing": config,
         "input_kind": "text", "mlflow_run_id": run.info.run_id, "test_metrics": test_metrics,
         "family": run.data.tags.get("family", classic.FAMILY)},
        texts, native, models_dir)
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metrics({f"test_{name}": value for name, value in test_metrics.items()})
        mlflow.log_metrics({**check, "onnx_size_bytes": (models_dir / f"{export.CHAMPION_STEM}.onnx").stat().st_size})
        mlflow.log_text(evaluate.report(gold, native, labels), "test/classification_report.txt")
        with tempfile.TemporaryDirectory() as folder:
            for path in evaluate.save_plots(gold, native, labels, Path(folder), "test"):
                mlflow.log_artifact(str(path), "test")
        mlflow.log_artifact(str(models_dir / f"{export.CHAMPION_STEM}.onnx"), "onnx")
        mlflow.log_artifact(str(manifest_path), "onnx")
    return manifest_path


def train(data: DataOptions, store: Path, models_dir: Path, variants: tuple[str, ...] = VARIANTS,
          latency_samples: int = 200) -> dict:
    """The whole session; returns a summary for the command line."""
    uri = tracking.configure(store)
    split = load_split(data)
    run_ids = [train_variant(split, data, variant, latency_samples) for variant in variants]
    champion = tracking.promote_champion(split.description()["split.validation.sha256"])
    manifest_path = export_champion(split, models_dir)
    runs = [MlflowClient().get_run(run_id) for run_id in run_ids]
    return {
        "tracking_uri": uri,
        "split": {name: len(part) for name, part in split.parts().items()},
        "runs": {run.info.run_name: {"run_id": run.info.run_id, "val_macro_f1": run.data.metrics["val_macro_f1"],
                                     "val_accuracy": run.data.metrics["val_accuracy"]} for run in runs},
        "champion": {"version": champion.version, "run_id": champion.run_id},
        "manifest": str(manifest_path),
        "test_metrics": json.loads(manifest_path.read_text())["test_metrics"],
    }


def export_from_registry(store: Path, models_dir: Path) -> Path:
    """Re-export the current champion, rebuilding its split from the data options logged with its run."""
    tracking.configure(store)
    run = MlflowClient().get_run(tracking.champion().run_id)
    return export_champion(load_split(DataOptions.from_params(run.data.params)), models_dir)
