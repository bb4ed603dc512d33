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


def _one_layer(tmp_path, nodes, outputs, columns=8):
    """A float graph of one weight product (x: 8 wide, weight 8 x `columns`, bias) and the nodes given."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, columns)).astype(np.float32), "weight"),
        numpy_helper.from_array(rng.normal(0, 0.3, columns).astype(np.float32), "bias"),
    ]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["product"]), *nodes],
        "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", 8])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        weights,
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize(
    ("case", "nodes", "outputs", "columns", "folds"),
    [
        # a residual reads x in float: it keeps reading x, and the product with its bias folds
        ("residual", [("Add", ["product", "bias"], "projected"), ("Add", ["projected", "x"], "y")], ["y"], 8, 1),
        ("bias first, wider output", [("Add", ["bias", "product"], "y")], ["y"], 5, 1),
        ("product read twice", [("Add", ["product", "bias"], "y"), ("Relu", ["product"], "z")], ["y", "z"], 8, 0),
        ("product is an output", [("Add", ["product", "bias"], "y")], ["y", "product"], 8, 0),
    ],
)
def test_static_int8_folds_a_products_bias_into_it_when_nothing_else_reads_it(
    tmp_path, monkeypatch, case, nodes, outputs, columns, folds
):
    """A weight product and its bias become one MatMulIntegerToFloat, and the folded graph answers what the QDQ
    graph answers (to the bit on the Xeon); a product something else reads is left as it is."""
    import numpy as np
    import onnx
    from onnx import helper

    from training.families import bert
    from tweet_sentiment.model import inference_session

    made = [helper.make_node(op, inputs, [output]) for op, inputs, output in nodes]
    fp32 = _one_layer(tmp_path, made, outputs, columns)
    rng = np.random.default_rng(5)
    calibration = [{"x": rng.normal(0, 1, (1, 5, 8)).astype(np.float32)} for _ in range(20)]
    bert.static_int8(fp32, tmp_path / "folded.onnx", calibration)
    with monkeypatch.context() as patched:  # the same recipe as ONNX Runtime's quantiser writes it
        patched.setattr(bert, "fold_biases", lambda model: 0)
        bert.static_int8(fp32, tmp_path / "qdq.onnx", calibration)
    folded, qdq = (onnx.load(str(tmp_path / name)) for name in ("folded.onnx", "qdq.onnx"))
    ops = [node.op_type for node in folded.graph.node]
    assert ops.count("MatMulIntegerToFloat") == folds and ops.count("MatMul") == 1 - folds, case
    assert ops.count("Add") == len([node for node in nodes if node[0] == "Add"]) - folds, case
    assert bert.fold_biases(folded) == 0 and bert.fold_biases(qdq) == folds  # folding is done once
    feed = {"x": rng.normal(0, 1, (3, 7, 8)).astype(np.float32)}
    unfolded = inference_session(str(tmp_path / "qdq.onnx"), 1).run(None, feed)
    for mine, theirs in zip(inference_session(str(tmp_path / "folded.onnx"), 1).run(None, feed), unfolded, strict=True):
        # The same arithmetic; 1e-6 leaves room for a CPU whose kernel adds the bias in a fused multiply-add.
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6, err_msg=case)


def test_the_shipped_champion_has_every_bias_folded():
    import onnx

    from training.families.bert import fold_biases

    assert fold_biases(onnx.load(str(SHIPPED_MANIFEST.parent / "champion.onnx"))) == 0
