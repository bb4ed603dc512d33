"""Quantisation benchmark: which way of making the fine-tuned MiniLM smaller and faster keeps its quality.
Prints a Markdown table: validation macro-F1 and accuracy through the served package, label agreement with
fp32, single-tweet p50/p95 on one thread, batch-of-64 throughput and file size, for

- fp32, as exported, and after ONNX Runtime's transformer optimiser (operator fusion);
- dynamic int8 (weights int8, activations scaled per run), per tensor and per channel;
- dynamic int8 per channel with the pooler and classifier left in fp32 (the nodes nearest the decision);
- the optimiser, then dynamic int8 per channel;
- static int8 (QDQ, activations calibrated once on training tweets), per channel: every operator quantised, as
  ONNX Runtime does by default (MinMax: its percentile calibrator fails on the graph's constant tensors), and
  the served recipe's way (only the weight products and embeddings, their outputs left in float:
  training/families/bert.py `static_int8`) with each calibration method (MinMax, entropy, 99.999th percentile).

Validation macro-F1 of the reason head is on the team's labelled validation tweets. Static graphs run in the
served runs (training/families/bert.py STATIC_BATCHING); dynamic ones one tweet a run.

    python -m scripts.quantisation_benchmark --manifest FOLDER/model.json [--calibration N]

FOLDER is the fp32 MiniLM's exported files: `mlflow artifacts download --run-id RUN --artifact-path onnx`
(the run of `bert-minilm-fine-tuned`). Needs the training stack (`onnx`, the split).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from sklearn.metrics import accuracy_score, f1_score

from training.config import DataOptions, hyperparameters, load_split
from training.data import reason_codes
from training.families.bert import STATIC_BATCHING, calibration_inputs, calibration_tweets, static_int8
from tweet_sentiment.manifest import Manifest, sha256_of
from tweet_sentiment.model import SentimentModel, wordpiece_tokenizer
from tweet_sentiment.text import preprocess_many


def optimised(source: Path, target: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    # all-MiniLM-L6-v2: 12 heads, hidden size 384.
    optimize_model(str(source), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(str(target))


def dynamic(per_channel: bool, keep_head_fp32: bool = False) -> Callable[[Path, Path], None]:
    def quantise(source: Path, target: Path) -> None:
        excluded = head_nodes(source) if keep_head_fp32 else []
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=excluded,
            # The optimiser's fused operators have no shape inference: their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )

    return quantise


def head_nodes(path: Path) -> list[str]:
    """The last two matrix products of the graph: the pooler's dense layer and the classifier."""
    products = [node.name for node in onnx.load(str(path)).graph.node if node.op_type in ("MatMul", "Gemm")]
    return products[-2:]


class TrainingTweets(CalibrationDataReader):
    """One tweet per run, as the service feeds single tweets."""

    def __init__(self, inputs: list[dict[str, np.ndarray]]):
        self._inputs = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._inputs, None)


def static(calibration: list[dict[str, np.ndarray]], method: CalibrationMethod) -> Callable[[Path, Path], None]:
    """Every operator ONNX Runtime can quantise, outputs included (its default)."""

    def quantise(source: Path, target: Path) -> None:
        quantize_static(
            str(source),
            str(target),
            TrainingTweets(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=method,
        )

    return quantise


def served_static(calibration: list[dict[str, np.ndarray]], method: CalibrationMethod) -> Callable[[Path, Path], None]:
    """The served recipe (weight products and embeddings, float outputs) with another calibration method."""

    def quantise(source: Path, target: Path) -> None:
        static_int8(source, target, calibration, method)

    return quantise


def chained(*steps: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def run(source: Path, target: Path) -> None:
        current = source
        for index, step in enumerate(steps):
            following = target if index == len(steps) - 1 else target.with_suffix(f".step{index}.onnx")
            step(current, following)
            current = following

    return run


def served_copy(manifest_path: Path, graph: Path, folder: Path, batching: dict[str, int]) -> Path:
    """The exported folder with another graph, its manifest pointing at it with the graph's sha256."""
    manifest = dataclasses.replace(Manifest.read(manifest_path), batching=batching)
    for asset in manifest.assets.values():
        shutil.copy(manifest_path.parent / asset["file"], folder / asset["file"])
    shutil.copy(graph, folder / manifest.onnx_file)
    copy = folder / manifest_path.name
    manifest = dataclasses.replace(manifest, onnx_sha256=sha256_of(folder / manifest.onnx_file))
    manifest.write(copy)
    return copy


def measured(model: SentimentModel, texts: list[str], gold: list[str], reference: np.ndarray | None) -> dict:
    scored = model.scored(texts)
    labels = [model.labels[index] for index in scored.probabilities.argmax(axis=1)]
    reasons = reason_codes(texts)
    known = reasons >= 0
    reason_f1 = (
        f1_score(reasons[known], scored.reasons[known].argmax(axis=1), average="macro")
        if scored.reasons is not None
        else float("nan")
    )
    single = []
    for text in texts[:300]:
        started = time.perf_counter()
        model.predict([text])
        single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for start in range(0, 640, 64):
        model.predict(texts[start : start + 64])
    return {
        "labels": np.array(labels),
        "macro-F1": f1_score(gold, labels, average="macro"),
        "reason macro-F1": reason_f1,
        "accuracy": accuracy_score(gold, labels),
        "agreement": 1.0 if reference is None else float(np.mean(np.array(labels) == reference)),
        "p50": float(np.percentile(single, 50)),
        "p95": float(np.percentile(single, 95)),
        "batch": 640 / (time.perf_counter() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="the fp32 MiniLM's exported model.json")
    parser.add_argument(
        "--calibration",
        type=int,
        default=hyperparameters("bert-minilm", quick=False)["calibration_tweets"],
        help="training tweets for static calibration (default: the served recipe's)",
    )
    args = parser.parse_args()

    manifest = Manifest.read(args.manifest)
    split = load_split(DataOptions())
    texts, gold = split.validation["text"].tolist(), split.validation["sentiment"].tolist()
    tokenizer = wordpiece_tokenizer(args.manifest.parent / manifest.assets["tokenizer"]["file"], 64)
    calibration_texts = calibration_tweets(split, 42, args.calibration)
    calibration = calibration_inputs(tokenizer, preprocess_many(calibration_texts, manifest.preprocessing))
    variants: dict[str, Callable[[Path, Path], None] | None] = {
        "fp32": None,
        "fp32, transformer optimiser": optimised,
        "int8 dynamic, per tensor": dynamic(per_channel=False),
        "int8 dynamic, per channel": dynamic(per_channel=True),
        "int8 dynamic, per channel, head in fp32": dynamic(per_channel=True, keep_head_fp32=True),
        "optimiser, then int8 dynamic per channel": chained(optimised, dynamic(per_channel=True)),
        "int8 static QDQ, every operator, MinMax": static(calibration, CalibrationMethod.MinMax),
        "int8 static, served recipe, MinMax": served_static(calibration, CalibrationMethod.MinMax),
        "int8 static, served recipe, entropy": served_static(calibration, CalibrationMethod.Entropy),
        "**int8 static, served recipe, percentile** (served)": served_static(calibration, CalibrationMethod.Percentile),
    }
    source = args.manifest.parent / manifest.onnx_file
    print(f"Validation: {len(texts)} airline tweets; latency: one tweet at a time, one ONNX Runtime thread\n")
    print(
        "| graph | val macro-F1 | val reason macro-F1 | val accuracy | labels as fp32 | p50 / p95 ms "
        "| batch 64 tweets/s | MB | build s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    reference = None
    for name, build in variants.items():
        with tempfile.TemporaryDirectory() as folder:
            graph = Path(folder) / "graph.onnx"
            started = time.perf_counter()
            if build is None:
                shutil.copy(source, graph)
            else:
                build(source, graph)
            seconds = time.perf_counter() - started
            served = Path(folder) / "served"
            served.mkdir()
            batching = dataclasses.asdict(STATIC_BATCHING) if "static" in name else {}
            model = SentimentModel.load(served_copy(args.manifest, graph, served, batching))
            figures = measured(model, texts, gold, reference)
            reference = figures["labels"] if reference is None else reference
            print(
                f"| {name} | {figures['macro-F1']:.4f} | {figures['reason macro-F1']:.4f} | "
                f"{figures['accuracy']:.4f} | {figures['agreement']:.1%} | "
                f"{figures['p50']:.2f} / {figures['p95']:.2f} | {figures['batch']:.0f} | "
                f"{graph.stat().st_size / 1e6:.1f} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
