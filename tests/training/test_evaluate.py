"""The figures every run logs: the bootstrap interval of macro-F1 on real scikit-learn and SciPy."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from training.pipeline.evaluate import macro_f1_interval, metrics, paired_accuracy_difference, paired_difference

LABELS = ["negative", "neutral", "positive"]


def _predictions(tweets: int, right: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    gold = generator.choice(LABELS, size=tweets)
    wrong = generator.random(tweets) > right
    predicted = np.where(wrong, generator.choice(LABELS, size=tweets), gold)
    return gold, predicted


def test_interval_holds_the_figure_and_narrows_with_more_tweets() -> None:
    gold, predicted = _predictions(400, right=0.8)
    low, high = macro_f1_interval(gold, predicted, LABELS)
    figures = metrics(list(gold), np.eye(3)[[LABELS.index(label) for label in predicted]] * 0.9 + 0.05, LABELS)
    assert low < figures["macro_f1"] < high
    assert (figures["macro_f1_ci95_low"], figures["macro_f1_ci95_high"]) == (low, high)
    many_low, many_high = macro_f1_interval(np.tile(gold, 16), np.tile(predicted, 16), LABELS)
    # Sixteen times the tweets: the interval is about a quarter as wide (sampling error goes as 1/sqrt(n)).
    assert many_high - many_low < (high - low) / 2.5
    assert 0.03 < high - low < 0.2


def test_interval_of_perfect_predictions_is_one_point() -> None:
    gold, _ = _predictions(300, right=1.0)
    assert macro_f1_interval(gold, gold, LABELS) == (1.0, 1.0)


def test_paired_difference_sees_a_real_improvement_and_none_between_equal_models() -> None:
    gold, baseline = _predictions(600, right=0.75)
    assert paired_difference(gold, baseline, baseline, LABELS) == (0.0, 0.0, 0.0)
    challenger = baseline.copy()
    fixed = np.flatnonzero(baseline != gold)[::2]  # the challenger gets half of the baseline's errors right
    challenger[fixed] = gold[fixed]
    difference, low, high = paired_difference(gold, baseline, challenger, LABELS)
    assert 0 < low < difference < high
    assert difference == f1_score(gold, challenger, average="macro") - f1_score(gold, baseline, average="macro")
    # A challenger that fixes ten of the baseline's errors and makes ten new ones is no measurable change.
    even = baseline.copy()
    errors, right = np.flatnonzero(baseline != gold)[:10], np.flatnonzero(baseline == gold)[:10]
    even[errors] = gold[errors]
    even[right] = np.where(gold[right] == "neutral", "positive", "neutral")
    _, low, high = paired_difference(gold, baseline, even, LABELS)
    assert low < 0 < high


def test_paired_accuracy_difference_sees_a_real_improvement_and_none_in_an_even_trade() -> None:
    gold, baseline = _predictions(600, right=0.75)
    challenger = baseline.copy()
    fixed = np.flatnonzero(baseline != gold)[::2]
    challenger[fixed] = gold[fixed]
    difference, low, high = paired_accuracy_difference(gold, baseline, challenger)
    assert difference == len(fixed) / 600 and 0 < low < difference < high
    even = baseline.copy()
    errors, right = np.flatnonzero(baseline != gold)[:10], np.flatnonzero(baseline == gold)[:10]
    even[errors] = gold[errors]
    even[right] = np.where(gold[right] == "neutral", "positive", "neutral")
    difference, low, high = paired_accuracy_difference(gold, baseline, even)
    assert difference == 0 and low < 0 < high
