"""Fitting the temperature, the calibration error and the unsure line on tweets whose truth is known by
construction: scores drawn so that their right answers are known."""

from __future__ import annotations

import numpy as np

from training.pipeline.calibration import MIN_UNSURE, UNSURE_ACCURACY, calibrate, ece, fit_temperature, unsure_line
from tweet_sentiment.calibration import scaled


def calibrated_tweets(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of three labels and gold labels drawn from those very probabilities: calibrated."""
    generator = np.random.default_rng(seed)
    probabilities = generator.dirichlet([0.6, 0.6, 0.6], size=count)
    gold = np.array([generator.choice(3, p=row) for row in probabilities])
    return probabilities, gold


def test_the_fitted_temperature_undoes_an_overconfident_model():
    probabilities, gold = calibrated_tweets(6000)
    overconfident = scaled(probabilities, 0.5)  # logits doubled: every score pushed towards 0 or 1
    temperature = fit_temperature(overconfident, gold)
    assert 1.8 < temperature < 2.2
    assert ece(scaled(overconfident, temperature), gold) < ece(overconfident, gold) / 3


def test_calibration_error_is_small_for_calibrated_scores_and_large_for_overconfident_ones():
    probabilities, gold = calibrated_tweets(6000)
    assert ece(probabilities, gold) < 0.02
    assert ece(scaled(probabilities, 0.3), gold) > 0.08


def test_the_unsure_line_leaves_under_it_answers_right_less_often_than_the_stated_level():
    probabilities, gold = calibrated_tweets(4000)
    line = unsure_line(probabilities, gold)
    under = probabilities.max(axis=1) < line
    right = probabilities.argmax(axis=1) == gold
    assert under.sum() >= MIN_UNSURE and right[under].mean() < UNSURE_ACCURACY
    higher = probabilities.max(axis=1) < line + 0.01  # the highest such line: one point higher breaks the promise
    assert right[higher].mean() >= UNSURE_ACCURACY


def test_calibrate_reports_the_error_before_and_after():
    probabilities, gold = calibrated_tweets(3000)
    figures = calibrate(scaled(probabilities, 0.5), gold)
    assert figures["ece"] < figures["ece_raw"] and figures["temperature"] > 1
