"""How a statically quantised transformer's batches should run: micro-batch size and padding multiple, measured.

For each combination, on the validation tweets: batch-of-64 throughput and one-tweet p50 (the combinations timed
in turn, round after round, so that load on the machine falls on all of them alike), and the largest score
difference between a tweet alone and inside a batch (0 when the runs keep each tweet independent). Prints a
Markdown table; the chosen combination is training/families/bert.py STATIC_BATCHING, written into the manifest.

    python -m scripts.batching_benchmark --manifest models/champion.json [--rounds 5]

Needs the training stack (the split).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from training.config import DataOptions, load_split
from training.pipeline.reference import machine
from tweet_sentiment.model import Batching, SentimentModel, WordPieceModel

MICRO_BATCHES = (1, 8, 16, 32, 64)
PAD_MULTIPLES = (1, 4, 8, 16)


def largest_difference(model: WordPieceModel, texts: list[str]) -> float:
    alone = np.vstack([model.scored([text]).probabilities for text in texts])
    batches = [model.scored(texts[start : start + 64]).probabilities for start in range(0, len(texts), 64)]
    return float(np.abs(np.vstack(batches) - alone).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=Path("models/champion.json"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = SentimentModel.load(args.manifest)
    assert isinstance(model, WordPieceModel), "only a transformer's batches run in micro-batches"
    texts = load_split(DataOptions()).validation["text"].tolist()
    rng = np.random.default_rng(0)
    combinations = [Batching(size, multiple) for size, multiple in itertools.product(MICRO_BATCHES, PAD_MULTIPLES)]
    batch_seconds: dict[Batching, list[float]] = {combination: [] for combination in combinations}
    single_ms: dict[Batching, list[float]] = {combination: [] for combination in combinations}
    for _ in range(args.rounds):
        batch = [texts[index] for index in rng.choice(len(texts), 64, replace=False)]
        singles = [texts[index] for index in rng.choice(len(texts), 20, replace=False)]
        for combination in combinations:
            model.batching = combination
            started = time.perf_counter()
            model.scored(batch)
            batch_seconds[combination].append(time.perf_counter() - started)
            for text in singles:
                started = time.perf_counter()
                model.scored([text])
                single_ms[combination].append((time.perf_counter() - started) * 1000)
    cpu = machine()
    print(f"Machine: {cpu['machine.cpu']}, int8: {cpu['machine.int8']}; {args.rounds} rounds, one thread\n")
    print("| micro-batch | padded to a multiple of | batch of 64, tweets/s | one tweet p50 ms | alone vs batch |")
    print("|---|---|---|---|---|")
    for combination in combinations:
        model.batching = combination
        throughput = 64 / float(np.median(batch_seconds[combination]))
        print(
            f"| {combination.micro_batch} | {combination.pad_to_multiple} | {throughput:.0f} | "
            f"{np.median(single_ms[combination]):.2f} | {largest_difference(model, texts[:192]):.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
