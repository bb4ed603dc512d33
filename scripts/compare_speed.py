"""Two served models timed side by side in one process (ONNX Runtime, one thread, the service's code), so that
their ratio holds whatever the CPU: one tweet p50/p95 and a batch of 64, alternately on the same validation
tweets. Prints a Markdown table with the machine (CPU model, int8 instruction set).

    python -m scripts.compare_speed --baseline OLD/champion.json --challenger models/champion.json [--samples 600]
        [--baseline-micro-batch 8]   # how the baseline's service ran transformer batches, if not one tweet a run
        [--baseline-all-fusions]     # every ONNX Runtime fusion, as services before commit 33e0438 ran it
        [--pipeline]                 # also time the challenger against the transformers pipeline, in the same run

The pipeline is what a team without this project would serve: Hugging Face transformers' text-classification
pipeline (torch, one thread) on the same all-MiniLM-L6-v2 architecture with a 3-label head, a batch of 64 in
one call.

Needs the training stack (the split and training/pipeline/reference.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.config import DataOptions, load_split
from training.pipeline.reference import machine, time_against
from tweet_sentiment.model import Batching, GraphModel, SentimentModel, WordPieceModel, inference_session


def with_runs(model: SentimentModel, micro_batch: int | None) -> SentimentModel:
    """A transformer whose batches run `micro_batch` tweets at a time (as an older service did), unpadded."""
    if micro_batch is not None and isinstance(model, WordPieceModel):
        model.batching = Batching(micro_batch=micro_batch)
    return model


def with_all_fusions(model: SentimentModel, manifest: Path) -> SentimentModel:
    """A graph run with every fusion ONNX Runtime makes (SkipLayerNormalization included), on one thread, as
    services before commit 33e0438 ran it (tweet_sentiment/model.py DISABLED_FUSIONS)."""
    if not isinstance(model, GraphModel):
        raise SystemExit(f"--baseline-all-fusions needs a model of one graph, not {model.manifest.input_kind}")
    model.session = inference_session(str(manifest.parent / model.manifest.onnx_file), 1, disabled_fusions=())
    return model


class TransformersPipeline:
    """The transformers text-classification pipeline on the MiniLM checkpoint, timed like a served model."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

        from training.families.bert import MINILM

        torch.set_num_threads(1)
        checkpoint = MINILM.locate()
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=3)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu", top_k=None)

    def probabilities(self, texts: list[str]) -> list:
        return self.pipe(texts, batch_size=len(texts), truncation=True, max_length=64)


def print_ratios(figures: dict[str, float], baseline: str) -> None:
    print(f"| figure | {baseline} | challenger | challenger / {baseline} |\n|---|---|---|---|")
    for name, mine, theirs in (
        ("one tweet p50 (ms)", "latency_single_ms_p50", "reference_single_ms_p50"),
        ("batch of 64 p50 (ms)", "latency_batch64_ms_p50", "reference_batch64_ms_p50"),
    ):
        print(f"| {name} | {figures[theirs]:.2f} | {figures[mine]:.2f} | {figures[mine] / figures[theirs]:.3f} |")
    throughput = figures["reference_batch64_ms_p50"] / figures["latency_batch64_ms_p50"]
    print(f"| batch of 64 throughput ratio (challenger / {baseline}) | | | {throughput:.3f} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--challenger", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--baseline-micro-batch", type=int, default=None, help="default: as its manifest says")
    parser.add_argument("--baseline-all-fusions", action="store_true", help="as served before 33e0438")
    parser.add_argument("--pipeline", action="store_true", help="also time against the transformers pipeline")
    args = parser.parse_args()
    baseline = with_runs(SentimentModel.load(args.baseline), args.baseline_micro_batch)
    if args.baseline_all_fusions:
        baseline = with_all_fusions(baseline, args.baseline)
    challenger = SentimentModel.load(args.challenger)
    texts = load_split(DataOptions()).validation["text"].tolist()
    figures = time_against(challenger, baseline, texts, args.samples)
    cpu = machine()
    print(
        f"Machine: {cpu['machine.cpu']}, int8: {cpu['machine.int8']}; {args.samples} single tweets, 6 batches of 64\n"
    )
    print_ratios(figures, "baseline")
    if args.pipeline:
        print_ratios(time_against(challenger, TransformersPipeline(), texts, args.samples), "pipeline")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
