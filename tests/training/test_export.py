"""Export and tracking details: the manifest is described in one place (training/pipeline/export.py), so a release keeps
everything the run's export said about the model; the experiment tells the MLflow UI what it holds;
the reference graph of the latency budget is built once per machine."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import SHIPPED_MANIFEST
from training.pipeline.export import released
from tweet_sentiment.manifest import Manifest


def test_a_release_keeps_every_description_field_of_the_runs_export():
    exported = dataclasses.replace(Manifest.read(SHIPPED_MANIFEST), languages=["en", "fr"], version="run-1234abcd")
    release = released(exported, "17", {"macro_f1": 0.8})
    assert release["languages"] == ["en", "fr"]  # the former copy listed its fields and dropped this one
    assert (release["version"], release["test_metrics"]) == ("17", {"macro_f1": 0.8})
    files = {"created_at", "onnx_file", "onnx_sha256", "assets"}
    for field in dataclasses.fields(Manifest):
        if field.name not in files | {"version", "test_metrics", "name"}:
            assert release[field.name] == getattr(exported, field.name), field.name
    assert files.isdisjoint(release)


def test_the_experiment_opens_on_the_trained_models_view_of_the_mlflow_ui(tmp_path, monkeypatch):
    import mlflow

    from training import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.configure(tmp_path / "mlruns")
    tracking.configure(tmp_path / "mlruns")  # a second time: the tag is set once, not twice
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_reference_graph_is_built_once_per_machine_and_its_versions(monkeypatch, tmp_path):
    from training.pipeline import reference

    first = reference.reference_model()  # built here, or loaded from an earlier run's cache
    reference.reference_model.cache_clear()

    def no_build(folder):
        raise AssertionError("built again")

    monkeypatch.setattr(reference, "_build", no_build)
    again = reference.reference_model()  # a new process would do the same: load, not build
    assert again.manifest.onnx_sha256 == first.manifest.onnx_sha256
    reference.reference_model.cache_clear()
    monkeypatch.setattr(reference, "_cached_folder", lambda: tmp_path / "another-key")
    with pytest.raises(AssertionError, match="built again"):  # another checkpoint, code or version: rebuilt
        reference.reference_model()
    reference.reference_model.cache_clear()
