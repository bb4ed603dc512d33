"""Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks") fitted on validation, the
expected calibration error, reliability diagrams and the unsure line: what `tweet_sentiment/calibration.py`
applies when serving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize_scalar

from tweet_sentiment.calibration import DEFAULT_UNSURE_BELOW, scaled

BINS = 15  # equal-width bins of the top score, as the ECE is usually reported
# The unsure line: the highest top score under which validation answers are right less than UNSURE_ACCURACY of
# the time (at least MIN_UNSURE tweets under it); a staff member reading "unsure" knows it is worse than a coin
# weighted 60/40.
UNSURE_ACCURACY = 0.6
MIN_UNSURE = 20


def fit_temperature(probabilities: np.ndarray, gold: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the gold codes (bounded to 0.05..20)."""

    def loss(log_temperature: float) -> float:
        calibrated = scaled(probabilities, float(np.exp(log_temperature)))
        return float(-np.mean(np.log(np.clip(calibrated[np.arange(len(gold)), gold], 1e-12, None))))

    found = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return round(float(np.exp(found.x)), 4)


def ece(probabilities: np.ndarray, gold: np.ndarray) -> float:
    """Expected calibration error: the mean gap between accuracy and top score in BINS equal-width bins,
    weighted by the bins' shares of tweets."""
    top, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == gold
    bins = np.minimum((top * BINS).astype(int), BINS - 1)
    gap = 0.0
    for index in np.unique(bins):
        inside = bins == index
        gap += inside.mean() * abs(right[inside].mean() - top[inside].mean())
    return float(gap)


def unsure_line(probabilities: np.ndarray, gold: np.ndarray) -> float:
    """The highest line (a step of 0.01) under which validation answers are right less than UNSURE_ACCURACY of
    the time, with at least MIN_UNSURE tweets under it; DEFAULT_UNSURE_BELOW when no line has that many."""
    top, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == gold
    chosen = None
    for line in np.round(np.arange(0.01, 1.0, 0.01), 2):
        under = top < line
        if under.sum() >= MIN_UNSURE and right[under].mean() < UNSURE_ACCURACY:
            chosen = float(line)
    return chosen if chosen is not None else DEFAULT_UNSURE_BELOW


def calibrate(probabilities: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """The temperature, the unsure line and the ECE before and after, for one head on validation."""
    temperature = fit_temperature(probabilities, gold)
    calibrated = scaled(probabilities, temperature)
    return {
        "temperature": temperature,
        "unsure_below": unsure_line(calibrated, gold),
        "ece_raw": ece(probabilities, gold),
        "ece": ece(calibrated, gold),
    }


def reliability_diagram(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> Path:
    """Accuracy against mean top score per bin, one line per named (probabilities, gold) pair."""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
    for name, (probabilities, gold) in curves.items():
        top, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == gold
        bins = np.minimum((top * BINS).astype(int), BINS - 1)
        used = np.unique(bins)
        axis.plot(
            [top[bins == index].mean() for index in used],
            [right[bins == index].mean() for index in used],
            marker="o",
            label=f"{name} (ECE {ece(probabilities, gold):.3f})",
        )
    axis.set(xlabel="top score", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper left")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
