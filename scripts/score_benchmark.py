"""Archive scoring speed and memory: `python -m tweet_sentiment score` on CSV files of N airline-style tweets
(the test fixture's real tweets, cycled), with 1 and 2 workers, against the in-process batch figure of the
same model measured in the same run. Prints a Markdown table with the machine.

    python -m scripts.score_benchmark [--rows 10000 200000] [--manifest models/champion.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
TWEETS = [row["text"] for row in csv.DictReader((APP_ROOT / "tests/data/airline_tweets.csv").open(encoding="utf-8"))]


def archive(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text"])
        for index in range(rows):
            writer.writerow([index, f"{TWEETS[index % len(TWEETS)]} #{index}"])


def in_process_batch(manifest: Path, tweets: int = 2048) -> float:
    """Tweets per second of SentimentModel.predict on batches of 64, one ONNX thread."""
    from tweet_sentiment.model import SentimentModel

    model = SentimentModel.load(manifest, intra_op_threads=1)
    texts = [f"{TWEETS[index % len(TWEETS)]} #{index}" for index in range(tweets)]
    started = time.perf_counter()
    for start in range(0, tweets, 64):
        model.predict(texts[start : start + 64])
    return tweets / (time.perf_counter() - started)


def score(source: Path, target: Path, manifest: Path, workers: int) -> tuple[float, float]:
    """(tweets per second, peak resident memory in MiB of the command and its worker processes)."""
    command = [sys.executable, "-m", "tweet_sentiment", "score", str(source), str(target), "--no-progress",
               "--workers", str(workers), "--model", str(manifest)]  # fmt: skip
    # A launcher of its own per run, so that its children's peak is this run's alone.
    launcher = (
        "import json, resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True,"
        " check=True); print(json.dumps([done.stdout, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    done = subprocess.run([sys.executable, "-c", launcher, *command], capture_output=True, text=True, check=True,
                          cwd=APP_ROOT)  # fmt: skip
    summary, peak_kib = json.loads(done.stdout)
    return float(json.loads(summary)["tweets_per_second"]), peak_kib / 1024


def main() -> None:
    from training.pipeline.reference import machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--manifest", type=Path, default=APP_ROOT / "models" / "champion.json")
    args = parser.parse_args()
    cpu = machine()
    batch = in_process_batch(args.manifest)
    print(
        f"Machine: {cpu['machine.cpu']}, int8: {cpu['machine.int8']}. In-process batches of 64: {batch:.0f} tweets/s\n"
    )
    print("| rows | workers | tweets/s | / in-process batch | peak RSS of one process (MiB) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            source = Path(folder) / f"tweets-{rows}.csv"
            archive(source, rows)
            for workers in (1, 2):
                speed, peak = score(source, Path(folder) / f"scored-{rows}-{workers}.csv", args.manifest, workers)
                print(f"| {rows:,} | {workers} | {speed:.0f} | {speed / batch:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
