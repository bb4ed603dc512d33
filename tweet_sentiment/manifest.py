"""The model manifest: the JSON file beside each exported ONNX model that says what it is and how to feed it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from .calibration import KEYS as CALIBRATION_KEYS
from .text import TextConfig

# How the graph is fed:
# - "text": one string tensor of preprocessed tweets (scikit-learn TF-IDF graphs);
# - "token_ids": preprocessed tokens mapped through the `vocabulary` asset, padded to `sequence_length` (biLSTM);
# - "wordpiece": the `tokenizer` asset (a tokenizers tokenizer.json) run on the cleaned tweet (BERT family);
# - "ensemble": no graph of its own; the weighted average of its `members`, each an exported model whose
#   manifest (sha256-checked) lies beside this one.
INPUT_KINDS = ("text", "token_ids", "wordpiece", "ensemble")
BATCHING_KEYS = ("micro_batch", "pad_to_multiple")  # tweet_sentiment/model.py `Batching`
REQUIRED_ASSETS: dict[str, set[str]] = {
    "text": set(),
    "token_ids": {"vocabulary"},
    "wordpiece": {"tokenizer"},
    "ensemble": set(),
}


class ModelError(RuntimeError):
    """A model that cannot be served; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    created_at: str
    labels: list[str]
    preprocessing: TextConfig
    input_kind: str
    onnx_file: str
    onnx_sha256: str
    mlflow_run_id: str
    test_metrics: dict[str, float]
    family: str  # e.g. "logreg", "bilstm-glove", "bert-minilm"
    assets: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # role -> {"file", "sha256"}
    sequence_length: int | None = None
    members: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # {"manifest", "sha256", "weight"}
    # ISO 639-1 codes of the languages the model was trained to read; a tweet in another gets a warning.
    languages: list[str] = dataclasses.field(default_factory=lambda: ["en"])
    # The complaint reasons of the graph's second output (REASON_OUTPUT), in its columns' order; empty for a model
    # without a reason head.
    reasons: list[str] = dataclasses.field(default_factory=list)
    # Fitted on validation (tweet_sentiment/calibration.py): "temperature" and "reason_temperature" of the heads,
    # "unsure_below" and "reason_unsure_below", the top calibrated score under which an answer is unsure.
    calibration: dict[str, float] = dataclasses.field(default_factory=dict)
    # A transformer's runs (tweet_sentiment/model.py `Batching`): "micro_batch" tweets of the same length padded
    # to a multiple of "pad_to_multiple" wordpieces; empty: one tweet a run, unpadded.
    batching: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["preprocessing"] = self.preprocessing.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Manifest:
        known = {field.name for field in dataclasses.fields(cls)}
        optional = {
            field.name
            for field in dataclasses.fields(cls)
            if field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        }
        missing = sorted(known - optional - set(values))
        unknown = sorted(set(values) - known)
        if missing or unknown:
            raise ValueError(f"manifest fields missing {missing}, unknown {unknown}")
        _check_types(values)
        values = dict(values, preprocessing=TextConfig.from_dict(values["preprocessing"]))
        manifest = cls(**values)
        if manifest.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind {manifest.input_kind!r} is not one of {INPUT_KINDS}")
        if len(manifest.labels) < 2 or len(set(manifest.labels)) != len(manifest.labels):
            raise ValueError(f"labels must be at least two distinct names, got {manifest.labels}")
        missing_assets = REQUIRED_ASSETS[manifest.input_kind] - set(manifest.assets)
        if missing_assets:
            raise ValueError(f"input_kind {manifest.input_kind!r} needs the assets {sorted(missing_assets)}")
        if manifest.input_kind == "ensemble" and not manifest.members:
            raise ValueError("an ensemble needs at least one member")
        if len(set(manifest.reasons)) != len(manifest.reasons) or len(manifest.reasons) == 1:
            raise ValueError(f"reasons must be none or at least two distinct names, got {manifest.reasons}")
        if manifest.input_kind in ("token_ids", "wordpiece") and not manifest.sequence_length:
            raise ValueError(f"input_kind {manifest.input_kind!r} needs a sequence_length")
        return manifest

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        if not path.is_file():
            raise ModelError(
                f"model manifest {path} not found: export a model with `python -m training train` "
                "or point SENTIMENT_MODEL_PATH at an exported manifest"
            )
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, RecursionError) as error:
            raise ModelError(f"model manifest {path} is invalid ({error}): re-export the model") from error


_STRING_FIELDS = ("name", "version", "created_at", "input_kind", "onnx_file", "onnx_sha256", "mlflow_run_id", "family")


def _check_types(values: dict[str, Any]) -> None:
    """A manifest is data from a file: check each field's type before anything uses it."""
    wrong = [name for name in _STRING_FIELDS if not isinstance(values[name], str)]
    if not isinstance(values["labels"], list) or not all(isinstance(label, str) for label in values["labels"]):
        wrong.append("labels")
    if not isinstance(values["preprocessing"], dict):
        wrong.append("preprocessing")
    if not isinstance(values["test_metrics"], dict):
        wrong.append("test_metrics")
    assets = values.get("assets", {})
    if not isinstance(assets, dict) or not all(
        isinstance(asset, dict) and isinstance(asset.get("file"), str) and isinstance(asset.get("sha256"), str)
        for asset in assets.values()
    ):
        wrong.append("assets")
    members = values.get("members", [])
    if not isinstance(members, list) or not all(
        isinstance(member, dict)
        and isinstance(member.get("manifest"), str)
        and isinstance(member.get("sha256"), str)
        and type(member.get("weight")) in (int, float)
        and member["weight"] > 0
        for member in members
    ):
        wrong.append("members")
    languages = values.get("languages", ["en"])
    if not isinstance(languages, list) or not languages or not all(isinstance(code, str) for code in languages):
        wrong.append("languages")
    reasons = values.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(reason, str) for reason in reasons):
        wrong.append("reasons")
    calibration = values.get("calibration", {})
    if not isinstance(calibration, dict) or not all(
        key in CALIBRATION_KEYS and type(value) in (int, float) and value > 0 for key, value in calibration.items()
    ):
        wrong.append("calibration")
    batching = values.get("batching", {})
    if not isinstance(batching, dict) or not all(
        key in BATCHING_KEYS and type(value) is int and 1 <= value <= 1024 for key, value in batching.items()
    ):
        wrong.append("batching")
    length = values.get("sequence_length")
    if length is not None and (type(length) is not int or length < 1):
        wrong.append("sequence_length")
    if wrong:
        raise ValueError(f"fields of the wrong type: {wrong}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
