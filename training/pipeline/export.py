"""ONNX export with a parity check: a model that disagrees with its native twin is never written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tweet_sentiment.manifest import Manifest, sha256_of
from tweet_sentiment.model import SentimentModel

from ..families.candidate import Candidate
from ..tracking import MODEL_NAME

MAX_PROBABILITY_DIFFERENCE = 1e-4
CHAMPION_STEM = "champion"


class ExportError(RuntimeError):
    """The exported graph does not reproduce the native model."""


def parity(native: np.ndarray, exported: np.ndarray) -> dict[str, float]:
    """Label agreement and the largest probability difference between two probability matrices."""
    agreement = float(np.mean(native.argmax(axis=1) == exported.argmax(axis=1)))
    difference = float(np.max(np.abs(native - exported))) if native.size else 0.0
    return {"parity_label_agreement": agreement, "parity_max_probability_difference": difference}


def described(candidate: Candidate, run_id: str, calibration: dict[str, float]) -> dict[str, Any]:
    """The manifest's description of a trained candidate (the files' fields are added by `write_checked`):
    the one place it is built. Its run's exported manifest carries it to every later release."""
    return {
        "name": MODEL_NAME,
        "version": f"run-{run_id[:8]}",
        "labels": candidate.labels,
        "preprocessing": candidate.text_config,
        "input_kind": candidate.input_kind,
        "mlflow_run_id": run_id,
        "test_metrics": {},
        "family": candidate.family,
        "sequence_length": candidate.sequence_length,
        "members": candidate.members,
        "reasons": candidate.reasons,
        "calibration": calibration,
        "batching": candidate.batching,
    }


def released(manifest: Manifest, version: str, test_metrics: dict[str, float]) -> dict[str, Any]:
    """The description of a run's exported model as a registered release: everything it says about the model
    (labels, text processing, languages, members...) kept, with the registry's version and the test figures."""
    kept = {
        field.name: getattr(manifest, field.name)
        for field in dataclasses.fields(manifest)
        if field.name not in ("created_at", "onnx_file", "onnx_sha256", "assets")  # written by write_checked
    }
    return {**kept, "name": MODEL_NAME, "version": version, "test_metrics": test_metrics}


def write_checked(
    onnx_bytes: bytes | None,
    manifest_fields: dict,
    texts: list[str],
    native_probabilities: np.ndarray,
    out_dir: Path,
    stem: str = CHAMPION_STEM,
    assets: dict[str, bytes] | None = None,
    max_difference: float = MAX_PROBABILITY_DIFFERENCE,
    min_agreement: float = 1.0,
    member_files: dict[str, bytes] | None = None,
    native_reasons: np.ndarray | None = None,
) -> tuple[Path, dict[str, float]]:
    """Write `<stem>.onnx`, its assets and its manifest into `out_dir` only when ONNX Runtime, run through the
    serving package on the raw tweets, agrees with the native model on every one of them. An ensemble has no
    graph of its own (`onnx_bytes` None): its members' files are written as they are named. A model with a
    reason head is checked on both heads (`native_reasons`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as staging:
        staging_dir = Path(staging)
        onnx_path = staging_dir / f"{stem}.onnx"
        if onnx_bytes is not None:
            onnx_path.write_bytes(onnx_bytes)
        for name, content in (member_files or {}).items():
            (staging_dir / name).write_bytes(content)
        asset_entries = {}
        for role, content in (assets or {}).items():
            asset_path = staging_dir / f"{stem}.{role}.json"
            asset_path.write_bytes(content)
            asset_entries[role] = {"file": asset_path.name, "sha256": sha256_of(asset_path)}
        manifest = Manifest(
            **manifest_fields,
            onnx_file=onnx_path.name if onnx_bytes is not None else "",
            onnx_sha256=sha256_of(onnx_path) if onnx_bytes is not None else "",
            assets=asset_entries,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        manifest_path = staging_dir / f"{stem}.json"
        manifest.write(manifest_path)
        scored = SentimentModel.load(manifest_path).scored(texts)
        check = parity(native_probabilities, scored.probabilities)
        checks = [check]
        if manifest.reasons:
            if native_reasons is None or scored.reasons is None:
                raise ExportError("a model with reasons is exported with its reason head's native probabilities")
            reason_check = parity(native_reasons, scored.reasons)
            checks.append(reason_check)
            check |= {f"reason_{name}": value for name, value in reason_check.items()}
        if any(
            one["parity_label_agreement"] < min_agreement or one["parity_max_probability_difference"] > max_difference
            for one in checks
        ):
            raise ExportError(
                f"ONNX model disagrees with the native model on {len(texts)} tweets: {check}; "
                f"limits: labels agree on {min_agreement:.0%}, probabilities within {max_difference}."
                " Nothing was written"
            )
        # Assets and the ONNX file first, then the manifest that points at them: a reader never sees a
        # manifest whose files are not yet in place.
        for path in sorted(staging_dir.iterdir(), key=lambda item: item == manifest_path):
            path.replace(out_dir / path.name)
    return out_dir / manifest_path.name, check
