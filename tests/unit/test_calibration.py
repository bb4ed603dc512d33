"""Temperature scaling as serving applies it: the manifest's temperature changes how sure a score is, never
which label wins."""

from __future__ import annotations

import numpy as np
import pytest

from tweet_sentiment.calibration import scaled


def softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7, 4.0])
def test_scaling_probabilities_is_dividing_the_logits(temperature):
    logits = np.random.default_rng(0).normal(scale=3, size=(200, 10))
    calibrated = scaled(softmax(logits), temperature)
    np.testing.assert_allclose(calibrated, softmax(logits / temperature), atol=1e-12)
    assert (calibrated.argmax(axis=1) == logits.argmax(axis=1)).all()


def test_a_temperature_above_one_softens_and_a_zero_stays_zero():
    probabilities = np.array([[0.9, 0.1, 0.0], [0.5, 0.3, 0.2]])
    softer = scaled(probabilities, 2.0)
    assert (softer.max(axis=1) < probabilities.max(axis=1)).all()
    assert softer[0, 2] == 0.0
    np.testing.assert_allclose(softer.sum(axis=1), 1.0)
