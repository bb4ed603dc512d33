"""ONNX export with a parity check: a model that disagrees with its native twin is never written."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.pipeline import Pipeline

from tweet_sentiment.manifest import Manifest, sha256_of
from tweet_sentiment.model import SentimentModel

MAX_PROBABILITY_DIFFERENCE = 1e-4
ONNX_TARGET_OPSET = 17
CHAMPION_STEM = "champion"


class ExportError(RuntimeError):
    """The exported graph does not reproduce the native model."""


def tfidf_pipeline_to_onnx(pipeline: Pipeline) -> bytes:
    """Convert a TF-IDF + classifier pipeline that reads preprocessed tweets (one string per row)."""
    vectorizer, classifier = pipeline.named_steps["tfidf"], pipeline.steps[-1][1]
    options = {
        # C.UTF-8 exists on every Linux; the default en_US locale is missing from slim images and the
        # session then fails to load. \w\w+ is scikit-learn's default token pattern without the \b anchors.
        id(vectorizer): {"tokenexp": r"\w\w+", "locale": "C.UTF-8"},
        id(classifier): {"zipmap": False},  # a plain probability tensor, not a list of dicts
    }
    onnx_model = convert_sklearn(pipeline, initial_types=[("text", StringTensorType([None, 1]))],
                                 options=options, target_opset=ONNX_TARGET_OPSET)
    return onnx_model.SerializeToString()


def parity(native: np.ndarray, exported: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Label agreement and the largest probability difference between two probability matrices."""
    agreement = float(np.mean(native.argmax(axis=1) == exported.argmax(axis=1)))
    difference = float(np.max(np.abs(native - exported))) if native.size else 0.0
    return {"parity_label_agreement": agreement, "parity_max_probability_difference": difference}


def write_checked(onnx_bytes: bytes, manifest_fields: dict, texts: list[str], native_probabilities: np.ndarray,
                  out_dir: Path, stem: str = CHAMPION_STEM) -> tuple[Path, dict[str, float]]:
    """Write `<stem>.onnx` and its manifest into `out_dir` only when ONNX Runtime, run through the serving
    package on the raw tweets, agrees with the native model on every one of them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as staging:
        staging_dir = Path(staging)
        onnx_path = staging_dir / f"{stem}.onnx"
        onnx_path.write_bytes(onnx_bytes)
        manifest = Manifest(**manifest_fields, onnx_file=onnx_path.name, onnx_sha256=sha256_of(onnx_path),
                            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        manifest_path = staging_dir / f"{stem}.json"
        manifest.write(manifest_path)
        served = SentimentModel.load(manifest_path).probabilities(texts)
        check = parity(native_probabilities, served, manifest.labels)
        if check["parity_label_agreement"] < 1.0 or check["parity_max_probability_difference"] > MAX_PROBABILITY_DIFFERENCE:
            raise ExportError(f"ONNX model disagrees with the native model on {len(texts)} tweets: {check}; "
                              f"limits: every label equal, probabilities within {MAX_PROBABILITY_DIFFERENCE}. "
                              "Nothing was written")
        # The ONNX file first, then the manifest that points at it: a reader never sees a manifest whose
        # file is not yet in place.
        final_onnx, final_manifest = out_dir / onnx_path.name, out_dir / manifest_path.name
        onnx_path.replace(final_onnx)
        manifest_path.replace(final_manifest)
    return final_manifest, check
