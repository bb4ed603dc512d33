"""MLflow set-up and the champion alias. Local SQLite store by default; MLFLOW_TRACKING_URI overrides it."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

EXPERIMENT = "tweet-sentiment"
MODEL_NAME = "tweet-sentiment"
CHAMPION = "champion"
DEFAULT_STORE = Path("mlruns")


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says what to do."""


def configure(store: Path = DEFAULT_STORE) -> str:
    """Point MLflow at the tracking store and the experiment; returns the tracking URI."""
    # Fail in seconds, not minutes, when a remote server is down.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    artifact_location = None
    if not uri:
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store.resolve() / 'mlflow.db'}"
        artifact_location = (store.resolve() / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location)
        mlflow.set_experiment(EXPERIMENT)
    except MlflowException as error:
        raise TrackingError(f"MLflow tracking store {uri} is not usable ({error}). Fix: start the tracking "
                            "server, correct MLFLOW_TRACKING_URI, or unset it to use the local store") from error
    return uri


def promote_champion(validation_sha256: str) -> ModelVersion:
    """Move the `champion` alias to the registered version with the best validation macro-F1 among those
    that meet the serving budget and were evaluated on this very validation part (figures on other parts do
    not compare)."""
    client = MlflowClient()
    best: tuple[float, ModelVersion] | None = None
    for version in client.search_model_versions(f"name='{MODEL_NAME}'"):
        run = client.get_run(version.run_id)
        if (run.data.params.get("split.validation.sha256") != validation_sha256
                or run.data.metrics.get("within_budget") != 1.0):
            continue
        score = run.data.metrics.get("val_macro_f1")
        if score is not None and (best is None or score > best[0]):
            best = (score, version)
    if best is None:
        raise TrackingError(f"no registered {MODEL_NAME} version validated on this split meets the serving budget: "
                            "train one first, or raise SERVING_P95_BUDGET_MS / SERVING_SIZE_BUDGET_MB")
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, best[1].version)
    return best[1]


def champion() -> ModelVersion:
    try:
        return MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException as error:
        raise TrackingError(f"no `{CHAMPION}` alias on {MODEL_NAME} in {mlflow.get_tracking_uri()}: "
                            "run `python -m training train` first") from error
