"""What the archive report costs: `python -m tweet_sentiment score` on one archive of N airline-style tweets with
a time column and context (followers, retweets; a fifth of the rows retweets of an earlier tweet), one worker,
with the report (figures, OUTPUT.report.json and .html) and with `--no-report`, side by side in one run. Peak
RSS from `/usr/bin/time -v`; tweets per second from the command's summary (scoring and report, the reading of
the input included). Prints a Markdown table with the machine.

    python -m scripts.archive_report_benchmark [--rows 200000] [--manifest models/champion.json]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.score_benchmark import APP_ROOT, TWEETS

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def archive(path: Path, rows: int, days: int = 30, seed: int = 7) -> None:
    """N rows over `days` days; a fifth are retweets of one of the last thousand tweets."""
    chance = random.Random(seed)
    recent: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["tweet_id", "text", "followers", "retweets", "likes", "created_at"])
        for index in range(rows):
            moment = START + dt.timedelta(seconds=index * days * 86_400 // rows)
            if recent and chance.random() < 0.2:
                text = f"RT @fan{chance.randrange(10_000)}: {chance.choice(recent)}"
            else:
                text = f"{TWEETS[index % len(TWEETS)]} #{index}"
                recent = [*recent[-999:], text]
            followers = int(chance.paretovariate(1.2) * 100)
            writer.writerow([index, text, followers, chance.randrange(20), chance.randrange(50),
                             moment.isoformat().replace("+00:00", "Z")])  # fmt: skip


def score(source: Path, target: Path, manifest: Path, report: bool) -> tuple[dict, float, float]:
    """(the command's summary, its peak RSS in MiB from /usr/bin/time -v, wall seconds)."""
    options = ["--no-progress", "--workers", "1", "--model", str(manifest), *([] if report else ["--no-report"])]
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "tweet_sentiment", "score", str(source), str(target)]
    command += options
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=APP_ROOT)
    wall = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    assert peak, done.stderr[-2000:]
    return json.loads(done.stdout), int(peak.group(1)) / 1024, wall


def main() -> None:
    from training.pipeline.reference import machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--manifest", type=Path, default=APP_ROOT / "models" / "champion.json")
    args = parser.parse_args()
    cpu = machine()
    print(f"Machine: {cpu['machine.cpu']}, int8: {cpu['machine.int8']}, one worker\n")
    print("| rows | report | tweets/s | wall (s) | peak RSS (MiB) | distinct tweets | grouping state (MiB) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"tweets-{args.rows}.csv"
        archive(source, args.rows)
        for report in (False, True):
            summary, peak, wall = score(source, Path(folder) / f"scored-{report}.csv", args.manifest, report)
            figures = summary.get("report", {})
            state = f"{figures['grouping_state_bytes'] / 2**20:.1f}" if figures else "–"
            print(
                f"| {args.rows:,} | {'yes' if report else 'no'} | {summary['tweets_per_second']:.0f} | {wall:.0f} "
                f"| {peak:.0f} | {figures.get('tweets', '–')} | {state} |",
                flush=True,
            )
            if figures:
                html = Path(folder) / f"scored-{report}.csv.report.html"
                hours, fired = len(figures["hours"]), len(figures["bad_buzz_hours"])
                print(
                    f"\npage: {html.stat().st_size / 1024:.0f} KiB, {hours} hours, {fired} bad-buzz hours", flush=True
                )


if __name__ == "__main__":
    main()
