"""A served model's reasons against the TF-IDF baseline on every team label the model never learnt from.

The 908 labelled validation tweets are too few to tell the two apart on macro-F1: the thin reasons decide it.
Training tweets labelled after a model was trained are held out from its reason head as much as validation's
(it never saw their reasons; their text did train the sentiment head, as negative tweets). Given the labels
file the model learnt from, this trains the baseline on that file's training labels (the recipe of
training/families/classic.py) and scores both on the validation labels, on the later training labels, and on
both together. Prints a Markdown table: each model's reason macro-F1 (95% interval) and accuracy, and the
model-minus-baseline differences with their 95% paired bootstrap intervals (training/pipeline/evaluate.py).

    git show 8478d5f:training/reasons.csv > learnt.csv     # what the shipped champion learnt from
    python -m scripts.reason_holdout --learnt learnt.csv [--manifest models/champion.json]

The sha256 it prints for the learnt file is the `reasons.sha256` the model's MLflow run logged. The model must
have been trained on the default split (`DataOptions()`), as every shipped champion is. Each part is taken in
the order of its tweets' keys, as the report takes validation, so that its bootstrap draws the same resamples
(both together: validation, then the later labels). Needs the training stack.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from scripts.paired_comparison import reasons_of
from training.config import DataOptions, load_split
from training.data import reason_codes, reason_labels, reasons_fingerprint, tweet_key
from training.families.classic import reason_baseline
from training.pipeline.evaluate import macro_f1_interval, paired_accuracy_difference, paired_difference
from tweet_sentiment.labels import REASONS
from tweet_sentiment.model import SentimentModel


def held_out(
    train: list[str], validation: list[str], learnt: dict[str, str], labels: dict[str, str]
) -> dict[str, list[str]]:
    """The labelled tweets a model that learnt the training labels `learnt` (sha256 -> reason) never learnt, by
    key: every labelled validation tweet, and the training tweets labelled since. Never a test tweet."""

    def unlearnt(texts: list[str]) -> list[str]:
        return sorted(
            (text for text in texts if tweet_key(text) in labels and tweet_key(text) not in learnt), key=tweet_key
        )

    return {"validation": unlearnt(validation), "later training labels": unlearnt(train)}


def row(part: str, gold: np.ndarray, model: np.ndarray, baseline: np.ndarray) -> str:
    """One Markdown row: both models' figures and their paired differences on the same tweets."""
    reasons = list(REASONS)

    def figures(predicted: np.ndarray) -> str:
        low, high = macro_f1_interval(gold, predicted, reasons)
        macro_f1 = f1_score(gold, predicted, labels=reasons, average="macro", zero_division=0)  # as the intervals
        accuracy = accuracy_score(gold, predicted)
        return f"{macro_f1:.4f} ({low:.3f}–{high:.3f}) / {accuracy:.4f}"

    f1 = "{:+.4f} ({:+.4f} to {:+.4f})".format(*paired_difference(gold, baseline, model, reasons))
    accuracy = "{:+.4f} ({:+.4f} to {:+.4f})".format(*paired_accuracy_difference(gold, baseline, model))
    return f"| {part} | {len(gold)} | {figures(model)} | {figures(baseline)} | {f1} | {accuracy} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learnt", type=Path, required=True, help="the reason labels file the model learnt from")
    parser.add_argument("--manifest", type=Path, default=Path("models/champion.json"))
    args = parser.parse_args()
    learnt_labels = reason_labels(args.learnt)
    training_rows = learnt_labels[learnt_labels["part"] == "train"]
    learnt = dict(zip(training_rows["sha256"], training_rows["reason"], strict=True))
    current = reason_labels()
    labels = dict(zip(current["sha256"], current["reason"], strict=True))
    options = DataOptions()
    split = load_split(options)
    train, validation = split.train["text"].tolist(), split.validation["text"].tolist()
    print(f"learnt file sha256 {reasons_fingerprint(args.learnt)}: {len(learnt)} training labels")
    baseline = reason_baseline(train, reason_codes(train, path=args.learnt), len(REASONS), options.seed)
    model = SentimentModel.load(args.manifest, intra_op_threads=1)
    print(
        "\n| tweets | count | model macro-F1 (95%) / acc. | baseline macro-F1 (95%) / acc. "
        "| macro-F1 difference | accuracy difference |"
    )
    print("|---|---|---|---|---|---|")
    answers = []
    for part, texts in held_out(train, validation, learnt, labels).items():
        gold = np.asarray([labels[tweet_key(text)] for text in texts])
        answers.append((gold, reasons_of(model, texts), np.asarray(REASONS)[baseline(texts).argmax(axis=1)]))
        print(row(part, *answers[-1]), flush=True)
    print(row("both", *(np.concatenate(columns) for columns in zip(*answers, strict=True))), flush=True)


if __name__ == "__main__":
    main()
