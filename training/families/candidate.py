"""What every model family's trainer hands to the common runner: a fitted model, its native predictions and
its ONNX export, so that evaluation, parity, latency, tracking and export are written once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tweet_sentiment.text import TextConfig

MEMBER_PREFIX = "member-"  # the names of an ensemble's member files (`member_files`), beside its manifest


@dataclasses.dataclass
class Candidate:
    family: str  # "logreg", "gaussian-nb", "xgboost", "bilstm-word2vec", "bilstm-glove", "bert-minilm", ...
    variant: str  # "lemmatize" / "stem", "frozen" / "fine-tuned", "distilled", "...-int8"
    text_config: TextConfig
    params: dict[str, object]
    predict_proba: Callable[[list[str]], np.ndarray]  # raw tweets -> probabilities, columns in label order
    onnx: bytes | None  # None for an ensemble: its members' graphs are in `member_files`
    labels: list[str]
    input_kind: str = "text"
    assets: dict[str, bytes] = dataclasses.field(default_factory=dict)  # role -> file content
    sequence_length: int | None = None
    search: list[dict] = dataclasses.field(default_factory=list)  # the hyper-parameter candidates tried
    training_seconds: float = 0.0
    # Parity tolerance of the ONNX graph against `predict_proba`; only a quantised graph is allowed more.
    parity_max_difference: float = 1e-4
    parity_min_agreement: float = 1.0
    log_native: Callable[[], None] | None = None  # logs the native model into the active MLflow run
    members: list[dict[str, object]] = dataclasses.field(default_factory=list)  # an ensemble's manifest entries
    member_files: dict[str, bytes] = dataclasses.field(default_factory=dict)  # file name -> content
    artifacts: dict[str, bytes] = dataclasses.field(default_factory=dict)  # more files for its run: path -> content
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # more tags for its run (e.g. teacher)
    # A model with a reason head: the complaint reasons in its columns' order, and raw tweets -> their probabilities.
    reasons: list[str] = dataclasses.field(default_factory=list)
    predict_reasons: Callable[[list[str]], np.ndarray] | None = None
    batching: dict[str, int] = dataclasses.field(default_factory=dict)  # a transformer's served runs (manifest)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.variant}"
