"""Scores that mean what they say: temperature scaling of a model's probabilities, and its unsure lines.

Training fits one temperature per head on the validation part (training/calibration.py) and chooses where a
score stops being trustworthy; the manifest keeps both, and serving applies them here. Dividing the logits by a
temperature never changes which label is highest: labels and parity are the same before and after."""

from __future__ import annotations

import numpy as np

# A model exported before calibration: its scores as they are, and the page's former fixed unsure line.
DEFAULT_UNSURE_BELOW = 0.6
KEYS = ("temperature", "reason_temperature", "unsure_below", "reason_unsure_below")


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) from the probabilities softmax(logits): the same as p ** (1/T), renormalised,
    computed from log-probabilities (a probability of 0 stays 0)."""
    if temperature == 1.0:
        return probabilities
    with np.errstate(divide="ignore"):
        logits = np.log(probabilities) / temperature
    logits -= np.max(logits, axis=-1, keepdims=True)
    exponentials = np.exp(logits)
    return np.asarray(exponentials / exponentials.sum(axis=-1, keepdims=True))
