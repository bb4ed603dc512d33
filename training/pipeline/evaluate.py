"""Metrics and plots, the same for every model so that runs compare in MLflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on training machines

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    RocCurveDisplay,
    accuracy_score,
    classification_report,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

BOOTSTRAP_RESAMPLES = 1000


def _labels_of(probabilities: np.ndarray, labels: list[str], predicted: list[str] | None) -> np.ndarray:
    # A model predicts the label of its highest probability, unless it has a rule of its own (VADER).
    return np.asarray(predicted) if predicted is not None else np.asarray(labels)[probabilities.argmax(axis=1)]


def _bootstrap_interval(samples: tuple[np.ndarray, ...], statistic: Callable[..., Any]) -> tuple[float, float]:
    """The 95% interval of `statistic` over 1,000 paired resamples of the tweets (percentile, fixed seed);
    `statistic` takes every resample at once (along its last axis)."""
    from scipy.stats import bootstrap

    interval = bootstrap(
        samples,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        random_state=0,
    ).confidence_interval
    return float(interval.low), float(interval.high)


def _macro_f1(gold: np.ndarray, predicted: np.ndarray, labels: list[str]) -> float:
    return float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0))


def _macro_f1_of_resamples(gold: np.ndarray, predicted: np.ndarray, classes: int, axis: int = -1) -> np.ndarray:
    """Macro-F1 of label codes along `axis` (one value per resample), as f1_score(average="macro",
    zero_division=0) computes it: per class 2TP / (2TP + FP + FN), 0 where a class is never seen, averaged.
    Vectorised: a thousand resamples cost about what one call of f1_score does."""
    gold, predicted = np.moveaxis(gold, axis, -1), np.moveaxis(predicted, axis, -1)
    scores = []
    for code in range(classes):
        true, said = gold == code, predicted == code
        hits = np.sum(true & said, axis=-1)
        seen = np.sum(true, axis=-1) + np.sum(said, axis=-1)  # 2TP + FP + FN
        scores.append(np.where(seen > 0, 2 * hits / np.maximum(seen, 1), 0.0))
    return np.mean(scores, axis=0)


def _codes(values: np.ndarray, labels: list[str]) -> np.ndarray:
    index = {label: code for code, label in enumerate(labels)}
    return np.array([index.get(value, -1) for value in values], dtype=np.int64)  # -1: a label outside `labels`


def macro_f1_interval(gold: np.ndarray, predicted: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """The 95% bootstrap interval of macro-F1 (tweets resampled with their predictions): how far the figure
    could move on another sample of tweets of the same size (about +-0.024 on the 1,440 validation tweets)."""
    return _bootstrap_interval(
        (_codes(gold, labels), _codes(predicted, labels)),
        lambda gold_part, predicted_part, axis=-1: _macro_f1_of_resamples(gold_part, predicted_part, len(labels), axis),
    )


def paired_difference(
    gold: np.ndarray, baseline: np.ndarray, challenger: np.ndarray, labels: list[str]
) -> tuple[float, float, float]:
    """Challenger minus baseline macro-F1 on the same tweets, with the 95% bootstrap interval of the
    difference (tweets resampled with both models' predictions, so the tweets the two agree on move
    together)."""

    def difference(
        gold_part: np.ndarray, baseline_part: np.ndarray, challenger_part: np.ndarray, axis: int = -1
    ) -> Any:
        classes = len(labels)
        return _macro_f1_of_resamples(gold_part, challenger_part, classes, axis) - _macro_f1_of_resamples(
            gold_part, baseline_part, classes, axis
        )

    point = _macro_f1(gold, challenger, labels) - _macro_f1(gold, baseline, labels)
    codes = tuple(_codes(values, labels) for values in (gold, baseline, challenger))
    return (point, *_bootstrap_interval(codes, difference))


def paired_accuracy_difference(
    gold: np.ndarray, baseline: np.ndarray, challenger: np.ndarray
) -> tuple[float, float, float]:
    """Challenger minus baseline accuracy on the same tweets, with its 95% paired bootstrap interval."""

    def difference(
        gold_part: np.ndarray, baseline_part: np.ndarray, challenger_part: np.ndarray, axis: int = -1
    ) -> Any:
        return np.mean(challenger_part == gold_part, axis=axis) - np.mean(baseline_part == gold_part, axis=axis)

    answers = (np.asarray(gold), np.asarray(baseline), np.asarray(challenger))
    return (float(difference(*answers)), *_bootstrap_interval(answers, difference))


def metrics(
    gold: list[str], probabilities: np.ndarray, labels: list[str], predicted: list[str] | None = None
) -> dict[str, float]:
    """Accuracy, macro-F1 with its 95% bootstrap interval, per-class precision/recall/F1, one-vs-rest
    ROC-AUC, log loss and the binary accuracy on the tweets whose gold label is positive or negative
    (positive vs negative score)."""
    gold_array = np.asarray(gold)
    predicted_labels = _labels_of(probabilities, labels, predicted)
    # float32 graphs (naive Bayes, softmax) sum to 1 only within ~1e-4; ROC-AUC and log loss insist on it.
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    results = {
        "accuracy": accuracy_score(gold_array, predicted_labels),
        "macro_f1": _macro_f1(gold_array, predicted_labels, labels),
        "log_loss": log_loss(gold_array, probabilities, labels=labels),
    }
    results["macro_f1_ci95_low"], results["macro_f1_ci95_high"] = macro_f1_interval(
        gold_array, predicted_labels, labels
    )
    if len(labels) == 2:
        results["roc_auc"] = roc_auc_score(gold_array == labels[1], probabilities[:, 1])
    else:
        results["roc_auc"] = roc_auc_score(gold_array, probabilities, labels=labels, multi_class="ovr", average="macro")
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold_array, predicted_labels, labels=labels, zero_division=0
    )
    for index, label in enumerate(labels):
        results[f"precision_{label}"] = precision[index]
        results[f"recall_{label}"] = recall[index]
        results[f"f1_{label}"] = f1[index]
    if {"positive", "negative"} <= set(labels):
        polar = np.isin(gold_array, ["positive", "negative"])
        positive_wins = probabilities[:, labels.index("positive")] > probabilities[:, labels.index("negative")]
        binary = np.where(positive_wins, "positive", "negative")
        results["binary_accuracy"] = accuracy_score(gold_array[polar], binary[polar])
    return {name: float(value) for name, value in results.items()}


def report(gold: list[str], probabilities: np.ndarray, labels: list[str], predicted: list[str] | None = None) -> str:
    predicted_labels = _labels_of(probabilities, labels, predicted)
    return classification_report(gold, predicted_labels, labels=labels, digits=4, zero_division=0)


def save_plots(
    gold: list[str],
    probabilities: np.ndarray,
    labels: list[str],
    folder: Path,
    prefix: str,
    predicted: list[str] | None = None,
) -> list[Path]:
    """Confusion matrix and one-vs-rest ROC curves as PNG files; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    predicted_labels = _labels_of(probabilities, labels, predicted)
    confusion_path = folder / f"{prefix}_confusion_matrix.png"
    display = ConfusionMatrixDisplay.from_predictions(gold, predicted_labels, labels=labels, cmap="Blues")
    display.ax_.set_title(f"Confusion matrix ({prefix})")
    display.figure_.savefig(confusion_path, dpi=100, bbox_inches="tight")
    plt.close(display.figure_)

    roc_path = folder / f"{prefix}_roc_curves.png"
    figure, axis = plt.subplots(figsize=(6, 5))
    gold_array = np.asarray(gold)
    for index, label in enumerate(labels):
        RocCurveDisplay.from_predictions(gold_array == label, probabilities[:, index], name=label, ax=axis)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axis.set_title(f"ROC curves, one vs rest ({prefix})")
    figure.savefig(roc_path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return [confusion_path, roc_path]


def reason_metrics(gold: list[str], predicted: list[str], reasons: list[str]) -> dict[str, float]:
    """The reason head's figures on the tweets the team labelled: accuracy, macro-F1 with its 95% bootstrap
    interval, and each reason's F1 (a reason the labels never name counts 0, as in macro-F1)."""
    gold_array, predicted_array = np.asarray(gold), np.asarray(predicted)
    results = {
        "accuracy": accuracy_score(gold_array, predicted_array),
        "macro_f1": _macro_f1(gold_array, predicted_array, reasons),
    }
    results["macro_f1_ci95_low"], results["macro_f1_ci95_high"] = macro_f1_interval(
        gold_array, predicted_array, reasons
    )
    _, _, f1, _ = precision_recall_fscore_support(gold_array, predicted_array, labels=reasons, zero_division=0)
    results.update({f"f1_{reason}": value for reason, value in zip(reasons, f1, strict=True)})
    return {name: float(value) for name, value in results.items()}


def confusion_plot(gold: list[str], predicted: list[str], labels: list[str], title: str, path: Path) -> Path:
    display = ConfusionMatrixDisplay.from_predictions(
        gold, predicted, labels=labels, cmap="Blues", xticks_rotation="vertical"
    )
    display.ax_.set_title(title)
    display.figure_.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(display.figure_)
    return path
