"""The serving package on the shipped champion: real ONNX Runtime sessions, and clear errors for bad files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tests.conftest import NEGATIVE_TWEET, SHIPPED_MANIFEST, copy_shipped_model
from tweet_sentiment.calibration import scaled
from tweet_sentiment.labels import REASONS
from tweet_sentiment.manifest import Manifest, ModelError, sha256_of
from tweet_sentiment.model import (
    DISABLED_FUSIONS,
    UNREADABLE,
    Batching,
    SentimentModel,
    inference_session,
    micro_batches,
)


@pytest.fixture()
def model_copy(tmp_path):
    """The shipped champion, copied so that a test may damage it."""
    manifest_path = copy_shipped_model(tmp_path)
    return manifest_path, tmp_path / Manifest.read(manifest_path).onnx_file


def test_shipped_champion_loads_and_matches_its_hash():
    model = SentimentModel.load(SHIPPED_MANIFEST)
    assert model.labels == ["negative", "neutral", "positive"]
    assert sha256_of(SHIPPED_MANIFEST.parent / model.manifest.onnx_file) == model.manifest.onnx_sha256
    assert model.manifest.test_metrics["macro_f1"] > 0.6


def test_batch_and_single_predictions_agree():
    model = SentimentModel.load(SHIPPED_MANIFEST, intra_op_threads=2)
    tweets = [NEGATIVE_TWEET, "@JetBlue thank you, great crew and a smooth flight!", "", "   "]
    batch = model.probabilities(tweets)
    single = np.vstack([model.probabilities([tweet]) for tweet in tweets])
    # A tweet's answer never depends on the tweets beside it (equal to the bit on the Xeon; the bar is 1e-5, and
    # the two empty tweets share a run, whose float operators another CPU's kernels may vectorise differently).
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    (negative, positive, *_) = model.predict(tweets)
    assert negative.label == "negative" and positive.label == "positive"


def test_missing_manifest(tmp_path):
    with pytest.raises(ModelError, match="not found: export a model"):
        SentimentModel.load(tmp_path / "champion.json")


def test_invalid_manifest(model_copy):
    manifest_path, _ = model_copy
    manifest_path.write_text("{not json")
    with pytest.raises(ModelError, match="is invalid.*re-export"):
        SentimentModel.load(manifest_path)


def test_manifest_with_unknown_preprocessing_step(model_copy):
    manifest_path, _ = model_copy
    values = json.loads(manifest_path.read_text())
    values["preprocessing"]["emoji"] = True
    manifest_path.write_text(json.dumps(values))
    with pytest.raises(ModelError, match="unknown text processing settings"):
        SentimentModel.load(manifest_path)


def test_missing_onnx_file(model_copy):
    manifest_path, onnx_path = model_copy
    onnx_path.unlink()
    with pytest.raises(ModelError, match="is missing: re-export"):
        SentimentModel.load(manifest_path)


def test_tampered_onnx_file_is_refused(model_copy):
    manifest_path, onnx_path = model_copy
    onnx_path.write_bytes(onnx_path.read_bytes()[:-10])
    with pytest.raises(ModelError, match="does not match the sha256"):
        SentimentModel.load(manifest_path)


def test_corrupt_onnx_file_with_matching_hash(model_copy):
    manifest_path, onnx_path = model_copy
    onnx_path.write_bytes(b"this is not an ONNX graph")
    values = json.loads(manifest_path.read_text())
    values["onnx_sha256"] = sha256_of(onnx_path)
    manifest_path.write_text(json.dumps(values))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load"):
        SentimentModel.load(manifest_path)


def test_runs_group_tweets_of_one_padded_length_in_order_and_cover_each_tweet_once():
    lengths = [9, 3, 17, 8, 16, 1, 24, 12, 7, 40]
    runs = micro_batches(lengths, Batching(micro_batch=2, pad_to_multiple=8))
    assert sorted(index for run in runs for index in run) == list(range(len(lengths)))
    assert all(len(run) <= 2 for run in runs)
    padded = [[-(-lengths[index] // 8) * 8 for index in run] for run in runs]
    assert all(len(set(run)) == 1 for run in padded)  # no tweet is padded for another
    assert [run[0] for run in padded] == sorted(run[0] for run in padded)
    assert micro_batches(lengths, Batching()) == [[index] for index in sorted(range(10), key=lengths.__getitem__)]


def test_a_batch_runs_in_the_manifests_runs_and_each_tweet_is_answered_as_alone():
    model = SentimentModel.load(SHIPPED_MANIFEST)
    if model.manifest.input_kind != "wordpiece":
        pytest.skip("only transformer batches are split into runs")
    batching = Batching.of(model.manifest)
    runs: list[tuple[int, int]] = []
    real_run = model.session.run

    def recorded(outputs, feed):
        runs.append(feed["input_ids"].shape)
        return real_run(outputs, feed)

    model.session.run = recorded
    long = NEGATIVE_TWEET + " and then they cancelled the connection, rebooked me three days later" * 3
    tweets = [long if index % 5 == 0 else f"{NEGATIVE_TWEET} {index}" for index in range(30)]
    batch = model.scored(tweets)
    assert sum(size for size, _ in runs) == 30
    assert all(size <= batching.micro_batch and length % batching.pad_to_multiple == 0 for size, length in runs)
    model.session.run = real_run
    alone = [model.scored([tweet]) for tweet in tweets]
    np.testing.assert_allclose(batch.probabilities, np.vstack([one.probabilities for one in alone]), rtol=0, atol=1e-5)
    if batch.reasons is not None:
        np.testing.assert_allclose(batch.reasons, np.vstack([one.reasons for one in alone]), rtol=0, atol=1e-5)


def _member(folder, name: str, weight: float, **text_switches) -> dict:
    """The shipped graph as an ensemble member, with its text processing changed by `text_switches`."""
    manifest = Manifest.read(copy_shipped_model(folder))
    assert manifest.input_kind == "wordpiece", "this test builds members from a single transformer graph"
    preprocessing = dataclasses.replace(manifest.preprocessing, **text_switches)
    path = folder / f"{name}.json"
    dataclasses.replace(manifest, preprocessing=preprocessing).write(path)
    return {"manifest": path.name, "sha256": sha256_of(path), "weight": weight}


def test_an_ensemble_member_that_cannot_read_a_tweet_abstains_on_it(tmp_path):
    # One member reads emoji, the other letters only: on an emoji-only tweet the second sees an empty tweet
    # and must not outvote the first; on plain words both count.
    members = [
        _member(tmp_path, "reads-emoji", 0.4, emoji_to_words=True, letters_only=False),
        _member(tmp_path, "letters-only", 0.6, emoji_to_words=False, letters_only=True),
    ]
    ensemble_path = tmp_path / "ensemble.json"
    base = Manifest.read(SHIPPED_MANIFEST)
    dataclasses.replace(
        base, input_kind="ensemble", onnx_file="", onnx_sha256="", assets={}, members=members, reasons=[]
    ).write(ensemble_path)
    ensemble = SentimentModel.load(ensemble_path)
    reads_emoji = SentimentModel.load(tmp_path / "reads-emoji.json")
    letters_only = SentimentModel.load(tmp_path / "letters-only.json")
    tweets = ["@united 😡😡😡", NEGATIVE_TWEET, "😡"]
    combined, first, second = (model.probabilities(tweets) for model in (ensemble, reads_emoji, letters_only))
    np.testing.assert_allclose(combined[0], first[0], atol=1e-6)
    np.testing.assert_allclose(combined[1], 0.4 * first[1] + 0.6 * second[1], atol=1e-6)
    assert [prediction.readable for prediction in ensemble.predict(tweets)] == [True, True, True]
    (unreadable,) = ensemble.predict(["@united https://t.co/x"])  # no member reads it: a guess, and it says so
    assert not unreadable.readable and UNREADABLE in unreadable.warnings


def test_every_input_kind_of_a_manifest_has_its_served_class():
    from tweet_sentiment.manifest import INPUT_KINDS
    from tweet_sentiment.model import KINDS, SentimentModel

    assert set(KINDS) == set(INPUT_KINDS)
    base = SentimentModel.open.__func__  # type: ignore[attr-defined]
    assert all(issubclass(kind, SentimentModel) and kind.open.__func__ is not base for kind in KINDS.values())  # type: ignore[attr-defined]


def test_a_negative_answer_carries_its_calibrated_reason_from_the_same_pass():
    model = SentimentModel.load(SHIPPED_MANIFEST)
    assert model.reasons == list(REASONS)
    tweets = [NEGATIVE_TWEET, "@united thank you, the crew was wonderful and we landed early!"]
    negative, positive = model.predict(tweets)
    assert (negative.label, positive.label) == ("negative", "positive") and positive.reason is None
    scored = model.scored(tweets)
    calibration = model.manifest.calibration
    assert negative.reason is not None
    expected = scaled(scored.reasons[:1], calibration["reason_temperature"])[0]
    assert negative.reason.scores == pytest.approx(dict(zip(REASONS, expected, strict=True)), abs=1e-6)
    assert negative.reason.label == REASONS[int(np.argmax(scored.reasons[0]))]  # the temperature keeps the order
    sentiment = scaled(scored.probabilities, calibration["temperature"])
    np.testing.assert_allclose([list(p.scores.values()) for p in (negative, positive)], sentiment, atol=1e-6)


def test_a_manifest_naming_other_reasons_than_its_graph_answers_is_refused(model_copy):
    manifest_path, _ = model_copy
    values = json.loads(manifest_path.read_text())
    values["reasons"] = values["reasons"][:-1]
    manifest_path.write_text(json.dumps(values))
    with pytest.raises(ModelError, match="gives 10 reasons scores per tweet but the manifest names 9 reasons"):
        SentimentModel.load(manifest_path)


def test_the_service_runs_a_residual_and_layer_norm_unfused(tmp_path):
    """ONNX Runtime would fuse them into SkipLayerNormalization, whose CPU kernel ran 4.6x slower (DISABLED_FUSIONS):
    the service's session runs the Add and LayerNormalization, and computes what they compute."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    hidden, rng = 384, np.random.default_rng(7)
    weights = [
        numpy_helper.from_array(rng.normal(1, 0.1, hidden).astype(np.float32), "gamma"),
        numpy_helper.from_array(rng.normal(0, 0.1, hidden).astype(np.float32), "beta"),
    ]
    shape = ["batch", "sequence", hidden]
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "skip"], ["sum"]),
            helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12),
        ],
        "residual",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name in ("x", "skip")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        weights,
    )
    graph_bytes = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    def operators(disabled: tuple[str, ...]) -> list[str]:
        inference_session(graph_bytes, 1, disabled, optimised_copy=tmp_path / "run.onnx")
        return [node.op_type for node in onnx.load(str(tmp_path / "run.onnx")).graph.node]

    assert operators(()) == ["SkipLayerNormalization"]  # ONNX Runtime's own choice: the check below can fail
    assert operators(DISABLED_FUSIONS) == ["Add", "LayerNormalization"]
    feed = {name: rng.normal(0, 3, (4, 25, hidden)).astype(np.float32) for name in ("x", "skip")}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    unfused = ort.InferenceSession(graph_bytes, options).run(None, feed)[0]
    np.testing.assert_allclose(inference_session(graph_bytes, 1).run(None, feed)[0], unfused, rtol=0, atol=1e-6)
