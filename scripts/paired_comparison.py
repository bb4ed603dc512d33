"""Two served models on the same tweets: is the challenger's macro-F1 really different from the baseline's?
Prints a Markdown table per part of the split (validation, test): each model's macro-F1 and accuracy, the
share of labels that differ, and the challenger-minus-baseline macro-F1 with its 95% paired bootstrap
interval (training/pipeline/evaluate.py). An interval that holds 0 means no measurable difference. When both
models have a reason head, the same for their reasons on the tweets of the part the team labelled (the
validation part: no test tweet has a reason label).

    python -m scripts.paired_comparison --baseline OLD/champion.json --challenger models/champion.json
        [--baseline-all-fusions]     # the baseline with every ONNX Runtime fusion, as served before commit 33e0438

Needs the training stack (the split). The test part is read here only to report on models already chosen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from scripts.compare_speed import with_all_fusions
from training.config import DataOptions, load_split
from training.data import reason_codes
from training.pipeline.evaluate import paired_difference
from tweet_sentiment.model import SentimentModel


def labels_of(model: SentimentModel, texts: list[str]) -> np.ndarray:
    """The labels the service answers."""
    return np.asarray([prediction.label for prediction in model.predict(texts)])


def reasons_of(model: SentimentModel, texts: list[str]) -> np.ndarray:
    """The reason head's answer for each tweet (what the service answers when it reads the tweet as negative)."""
    reasons = model.scored(texts).reasons
    assert reasons is not None
    return np.asarray(model.reasons)[reasons.argmax(axis=1)]


def row(part: str, gold: np.ndarray, old: np.ndarray, new: np.ndarray, labels: list[str]) -> str:
    difference, low, high = paired_difference(gold, old, new, labels)
    return (
        f"| {part} | {len(gold)} "
        f"| {f1_score(gold, old, average='macro'):.4f} / {accuracy_score(gold, old):.4f} "
        f"| {f1_score(gold, new, average='macro'):.4f} / {accuracy_score(gold, new):.4f} "
        f"| {np.mean(old != new):.1%} | {difference:+.4f} ({low:+.4f} to {high:+.4f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline's manifest")
    parser.add_argument("--challenger", type=Path, required=True, help="the challenger's manifest")
    parser.add_argument("--baseline-all-fusions", action="store_true", help="as served before 33e0438")
    args = parser.parse_args()
    baseline, challenger = (SentimentModel.load(path, intra_op_threads=1) for path in (args.baseline, args.challenger))
    if args.baseline_all_fusions:
        baseline = with_all_fusions(baseline, args.baseline)
    labels = list(challenger.manifest.labels)
    split = load_split(DataOptions())
    print(
        "| part | tweets | baseline macro-F1 / acc. | challenger macro-F1 / acc. | labels differ "
        "| macro-F1 difference (95% interval) |"
    )
    print("|---|---|---|---|---|---|")
    for part in ("validation", "test"):
        tweets = split.parts()[part]
        texts, gold = tweets["text"].tolist(), tweets["sentiment"].to_numpy()
        print(row(part, gold, labels_of(baseline, texts), labels_of(challenger, texts), labels), flush=True)
        codes = reason_codes(texts)
        known = [text for text, code in zip(texts, codes, strict=True) if code >= 0]
        if known and baseline.reasons and challenger.reasons:
            gold_reasons = np.asarray(challenger.reasons)[codes[codes >= 0]]
            old, new = reasons_of(baseline, known), reasons_of(challenger, known)
            print(row(f"{part}, reasons", gold_reasons, old, new, list(challenger.reasons)), flush=True)


if __name__ == "__main__":
    main()
