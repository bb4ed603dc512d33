"""The reference graph every candidate is timed against, and the machine it ran on.

The reference is the served architecture: all-MiniLM-L6-v2 with both heads (initialised from a fixed seed: its
answers do not matter, only its cost), exported like the fine-tuned MiniLM, quantised to int8 as it is (static,
per channel) and run in its micro-batches. A candidate and the reference are timed alternately, tweet by tweet,
in one process, so that their ratio holds on any CPU and under any load, where milliseconds do not."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import inspect
import json
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tweet_sentiment.manifest import Manifest, sha256_of
from tweet_sentiment.model import SentimentModel

REFERENCE_SEED = 1234
# Calibrates the reference's static int8 (its scores do not matter: any text gives the same cost).
REFERENCE_TWEETS = ["the reference graph of the budget", "timed against every candidate, tweet by tweet"]
INT8_INSTRUCTIONS = (("AVX-512 VNNI", "avx512_vnni"), ("AVX-VNNI", "avx_vnni"), ("AVX2, no VNNI", "avx2"))


def machine() -> dict[str, str]:
    """The CPU model and the int8 instruction set ONNX Runtime's kernels can use on it (x86 Linux flags)."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags_line = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    int8 = next((name for name, flag in INT8_INSTRUCTIONS if flag in flags), "unknown" if not flags else "none")
    return {
        "machine.cpu": model.group(1).strip() if model else platform.processor() or platform.machine(),
        "machine.int8": int8,
    }


@functools.cache
def reference_model() -> SentimentModel:
    """The reference graph, built once per machine (about 15 s with torch's import) and kept in the cache
    folder under a key of everything that shapes it: the checkpoint, the code that builds it and the versions
    of torch, transformers and ONNX Runtime. Every later run only loads it."""
    folder = _cached_folder()
    if not (folder / "reference.json").is_file():
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
        _build(staging)
        try:
            staging.rename(folder)
        except OSError:  # another process finished first: its graph is the same
            shutil.rmtree(staging, ignore_errors=True)
    return SentimentModel.load(folder / "reference.json")


def _cached_folder() -> Path:
    from importlib.metadata import version

    from ..families import bert
    from ..families.checkpoints import cache_folder

    checkpoint = bert.MINILM.locate()
    identity = hashlib.sha256()
    for module in (sys.modules[__name__], bert):  # the code that builds it: this module and the export it calls
        identity.update(inspect.getsource(module).encode())
    for path in sorted(checkpoint.iterdir()):
        identity.update(f"{path.name}:{path.stat().st_size}".encode())
    identity.update(" ".join(version(name) for name in ("torch", "transformers", "onnxruntime")).encode())
    folder = cache_folder() / "reference-graph" / identity.hexdigest()[:16]
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def _build(folder: Path) -> None:
    import torch

    from tweet_sentiment.labels import LABELS, REASONS
    from tweet_sentiment.model import wordpiece_inputs, wordpiece_tokenizer

    from ..families.bert import (
        BERT_TEXT,
        MINILM,
        STATIC_BATCHING,
        calibration_inputs,
        classifier,
        export_onnx,
        static_int8,
        two_heads,
    )

    checkpoint = MINILM.locate()
    torch.manual_seed(REFERENCE_SEED)
    model = two_heads(classifier(checkpoint, len(LABELS)), len(REASONS)).eval()  # the served architecture
    tokenizer = wordpiece_tokenizer(checkpoint / "tokenizer.json", 64)
    export_onnx(model, wordpiece_inputs(tokenizer, ["reference graph", "of the budget"]), folder / "fp32.onnx")
    # Quantised as the served transformer is; its answers do not matter, so a few sentences calibrate it.
    static_int8(folder / "fp32.onnx", folder / "reference.onnx", calibration_inputs(tokenizer, REFERENCE_TWEETS))
    (folder / "fp32.onnx").unlink()
    shutil.copyfile(checkpoint / "tokenizer.json", folder / "tokenizer.json")
    manifest = Manifest(
        name="reference",
        version="reference",
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        labels=list(LABELS),
        preprocessing=BERT_TEXT,
        input_kind="wordpiece",
        onnx_file="reference.onnx",
        onnx_sha256=sha256_of(folder / "reference.onnx"),
        mlflow_run_id="",
        test_metrics={},
        family="reference",
        assets={"tokenizer": {"file": "tokenizer.json", "sha256": sha256_of(folder / "tokenizer.json")}},
        sequence_length=64,
        reasons=list(REASONS),  # both heads are read, as the service reads them
        batching=dataclasses.asdict(STATIC_BATCHING),  # and its runs are the served transformer's
    )
    (folder / "reference.json").write_text(json.dumps(manifest.to_dict()))


@dataclasses.dataclass
class _Timings:
    single: list[float] = dataclasses.field(default_factory=list)
    batch: list[float] = dataclasses.field(default_factory=list)


def _timed(model: SentimentModel, texts: list[str]) -> float:
    started = time.perf_counter()
    model.probabilities(texts)
    return (time.perf_counter() - started) * 1000


def time_against_reference(model: SentimentModel, texts: list[str], samples: int) -> dict[str, float]:
    """What the service would see (ONNX Runtime with the shared preprocessing, one thread), the candidate and
    the reference alternately on the same tweets: milliseconds of both and their ratios."""
    return time_against(model, reference_model(), texts, samples)


def time_against(model: SentimentModel, reference: SentimentModel, texts: list[str], samples: int) -> dict[str, float]:
    """Two served models timed alternately, tweet by tweet, then on batches of 64 (`reference_*` figures are the
    second's)."""
    timings = {"candidate": _Timings(), "reference": _Timings()}
    pair = (("candidate", model), ("reference", reference))
    for step, text in enumerate((texts * (samples // max(len(texts), 1) + 1))[:samples]):
        for name, served in pair if step % 2 else pair[::-1]:  # who goes first alternates too
            timings[name].single.append(_timed(served, [text]))
    batch_texts = (texts * (64 // max(len(texts), 1) + 1))[:64]
    for step in range(6):
        for name, served in pair if step % 2 else pair[::-1]:
            timings[name].batch.append(_timed(served, batch_texts))
    candidate, ours = timings["candidate"], timings["reference"]
    figures = {
        "latency_single_ms_p50": float(np.percentile(candidate.single, 50)),
        "latency_single_ms_p95": float(np.percentile(candidate.single, 95)),
        "latency_batch64_ms_p50": float(np.percentile(candidate.batch, 50)),
        "reference_single_ms_p50": float(np.percentile(ours.single, 50)),
        "reference_batch64_ms_p50": float(np.percentile(ours.batch, 50)),
    }
    figures["latency_single_p50_ratio"] = figures["latency_single_ms_p50"] / figures["reference_single_ms_p50"]
    figures["latency_batch64_ratio"] = figures["latency_batch64_ms_p50"] / figures["reference_batch64_ms_p50"]
    return figures
