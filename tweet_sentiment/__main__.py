"""Command line of the serving package: `python -m tweet_sentiment score INPUT OUTPUT` scores an archive of
tweets (CSV, JSON Lines or Parquet) with the served model. Needs the serving requirements only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .manifest import ModelError
from .scoring import Job, ScoringError, run
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tweet_sentiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser(
        "score",
        help="score every tweet of a file; resumable, never writes a partial output",
        description="Writes OUTPUT (same formats, by extension) with every input column, in input order, plus "
        "label, score_negative, score_neutral, score_positive, model_version, language, warnings and error. "
        "Run again after an interruption: only the missing chunks are scored.",
    )
    score.add_argument("input", type=Path, help="a .csv, .jsonl or .parquet file of tweets")
    score.add_argument("output", type=Path, help="where to write the scored rows (.csv, .jsonl or .parquet)")
    score.add_argument("--text-column", default="text", help="the column that holds the tweet (default: text)")
    score.add_argument("--model", type=Path, default=Settings.from_environment().model_path, help="model manifest")
    score.add_argument("--workers", type=int, default=1, help="processes, each with its own model (default 1)")
    score.add_argument("--chunk-size", type=int, default=1000, help="rows per chunk (the unit of resumption)")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.chunk_size < 1:
        parser.error("--workers and --chunk-size must be at least 1")
    job = Job(args.input, args.output, args.model, args.text_column, args.chunk_size, args.workers)
    try:
        summary = run(job, progress=not args.no_progress)
    except (ScoringError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk filled up, a file vanished mid-run: run again to resume
        print(f"error: {error.strerror or error} ({error.filename or 'output'}); run again to resume", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
