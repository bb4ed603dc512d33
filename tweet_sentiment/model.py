"""ONNX Runtime inference for an exported sentiment model: manifest in, labels and scores out."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .manifest import Manifest, ModelError, sha256_of
from .text import preprocess_many


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]


class SentimentModel:
    """One ONNX Runtime session plus the preprocessing its manifest names. Thread-safe for `predict`."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, load_seconds: float):
        self.manifest = manifest
        self.session = session
        self.load_seconds = load_seconds
        self._input_name = session.get_inputs()[0].name
        self._probability_output = _probability_output(session)

    @classmethod
    def load(cls, manifest_path: Path, intra_op_threads: int = 1) -> "SentimentModel":
        """Load and verify a model; raises ModelError with what to do when it cannot be served."""
        started = time.perf_counter()
        manifest = Manifest.read(manifest_path)
        onnx_path = manifest_path.parent / manifest.onnx_file
        if not onnx_path.is_file():
            raise ModelError(f"ONNX file {onnx_path} named by {manifest_path} is missing: re-export the model")
        if sha256_of(onnx_path) != manifest.onnx_sha256:
            raise ModelError(f"ONNX file {onnx_path} does not match the sha256 in {manifest_path}: the file is "
                             "corrupt or was replaced; re-export the model")
        options = ort.SessionOptions()
        # ONNX Runtime sizes its pool from the host's cores, not the container's: set it explicitly.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime raises its own exception types for unreadable graphs
            raise ModelError(f"ONNX Runtime cannot load {onnx_path} ({error}): re-export the model") from error
        model = cls(manifest, session, 0.0)
        model.probabilities(["warm up"])  # first run loads the lemmatiser tables: not on a user's request
        model.load_seconds = time.perf_counter() - started
        return model

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, one row per tweet, columns in `labels` order."""
        processed = preprocess_many(texts, self.manifest.preprocessing)
        feed = {self._input_name: np.array(processed, dtype=object).reshape(-1, 1)}
        (probabilities,) = self.session.run([self._probability_output], feed)
        return np.asarray(probabilities, dtype=np.float64)

    def predict(self, texts: list[str]) -> list[Prediction]:
        probabilities = self.probabilities(texts)
        return [
            Prediction(
                label=self.labels[int(np.argmax(row))],
                scores={label: round(float(value), 6) for label, value in zip(self.labels, row)},
            )
            for row in probabilities
        ]


def _probability_output(session: ort.InferenceSession) -> str:
    # skl2onnx names it "probabilities" (or "output_probability"); it is the float tensor of rank 2.
    for output in session.get_outputs():
        if output.type == "tensor(float)" and len(output.shape) == 2:
            return output.name
    raise ModelError("the ONNX graph has no probability output (a float tensor of shape [batch, labels]): "
                     "export it with zipmap disabled")
