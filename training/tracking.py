"""MLflow set-up and the registry's names. Local SQLite store by default; MLFLOW_TRACKING_URI overrides it."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .settings import TrainingSettings

EXPERIMENT = "tweet-sentiment"
MODEL_NAME = "tweet-sentiment"
CHAMPION = "champion"
DEFAULT_STORE = Path("mlruns")
DATABASE = "mlflow.db"  # a local store's SQLite file


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says what to do."""


# The MLflow UI opens an experiment on its GenAI (traces) view unless told it holds trained models.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def configure(store: Path = DEFAULT_STORE) -> str:
    """Point MLflow at the tracking store and the experiment; returns the tracking URI."""
    # Fail in seconds, not minutes, when a remote server is down.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    uri = TrainingSettings.from_environment().tracking_uri
    artifact_location = None
    if not uri:
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store.resolve() / DATABASE}"
        artifact_location = (store.resolve() / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location)
        experiment = mlflow.set_experiment(EXPERIMENT)
        if experiment.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
            MlflowClient().set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
    except MlflowException as error:
        raise TrackingError(
            f"MLflow tracking store {uri} is not usable ({error}). Fix: start the tracking "
            "server, correct MLFLOW_TRACKING_URI, or unset it to use the local store"
        ) from error
    return uri


def has_store(store: Path) -> bool:
    """Whether runs can be read: a tracking server is named, or the local store exists."""
    return bool(TrainingSettings.from_environment().tracking_uri) or (store / DATABASE).is_file()


def champion() -> ModelVersion:
    try:
        return MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException as error:
        raise TrackingError(
            f"no `{CHAMPION}` alias on {MODEL_NAME} in {mlflow.get_tracking_uri()}: "
            "run `python -m training train` first"
        ) from error


def answers_reasons(run: Run) -> bool:
    """Whether a run's model has a reason head (the runner logs how many reasons it answers)."""
    return int(run.data.params.get("reasons", "0")) > 0


def run_of(version: ModelVersion) -> Run:
    """The MLflow run that produced a registered version (every version here is logged from a run)."""
    if version.run_id is None:
        raise TrackingError(f"{MODEL_NAME} version {version.version} has no run: it was not registered by training")
    return MlflowClient().get_run(version.run_id)
