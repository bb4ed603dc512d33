"""Two served models timed side by side in one process (ONNX Runtime, one thread, the service's code), so that
their ratio holds whatever the CPU: one tweet p50/p95 and a batch of 64, alternately on the same validation
tweets. Prints a Markdown table with the machine (CPU model, int8 instruction set).

    python -m scripts.compare_speed --baseline OLD/champion.json --challenger models/champion.json [--samples 600]
        [--baseline-micro-batch 8]   # how the baseline's service ran transformer batches, if not one tweet a run

Needs the training stack (the split and training/pipeline/reference.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import tweet_sentiment.model as served
from training.config import DataOptions, load_split
from training.pipeline.reference import machine, time_against
from tweet_sentiment.model import SentimentModel


class RunsOf(SentimentModel):
    """A served model whose transformer batches run `size` tweets at a time (as an older service did)."""

    def __init__(self, model: SentimentModel, size: int):
        super().__init__(model.manifest)
        self.model = model
        self.size = size

    def probabilities(self, texts: list[str]):
        kept, served.MICRO_BATCH = served.MICRO_BATCH, self.size
        try:
            return self.model.probabilities(texts)  # its own class's pass (both heads where it has two)
        finally:
            served.MICRO_BATCH = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--challenger", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--baseline-micro-batch", type=int, default=served.MICRO_BATCH)
    args = parser.parse_args()
    baseline = RunsOf(SentimentModel.load(args.baseline), args.baseline_micro_batch)
    challenger = SentimentModel.load(args.challenger)
    texts = load_split(DataOptions()).validation["text"].tolist()
    figures = time_against(challenger, baseline, texts, args.samples)
    cpu = machine()
    print(
        f"Machine: {cpu['machine.cpu']}, int8: {cpu['machine.int8']}; {args.samples} single tweets, 6 batches of 64\n"
    )
    print("| figure | baseline | challenger | challenger / baseline |\n|---|---|---|---|")
    for name, mine, theirs in (
        ("one tweet p50 (ms)", "latency_single_ms_p50", "reference_single_ms_p50"),
        ("batch of 64 p50 (ms)", "latency_batch64_ms_p50", "reference_batch64_ms_p50"),
    ):
        print(f"| {name} | {figures[theirs]:.2f} | {figures[mine]:.2f} | {figures[mine] / figures[theirs]:.3f} |")
    throughput = figures["reference_batch64_ms_p50"] / figures["latency_batch64_ms_p50"]
    print(f"| batch of 64 throughput ratio | | | {throughput:.3f} |")


if __name__ == "__main__":
    main()
