"""Command line of the serving package: `python -m tweet_sentiment score INPUT OUTPUT` scores an archive of
tweets (CSV, JSON Lines or Parquet) with the served model; `python -m tweet_sentiment archive put FILE` drops a
file in the archive job's storage (the local app's Azurite by default) and waits for its report. Needs the
serving requirements only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .archive_report import BAD_BUZZ, CONTEXT_FIELDS, AlertRule, context_columns
from .manifest import ModelError
from .scoring import Job, ScoringError, run
from .settings import Settings

LOCAL_ARCHIVE_STORAGE = ".azurite/archive-storage"  # written by scripts/local_server.py --azurite, while it runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tweet_sentiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser(
        "score",
        help="score every tweet of a file; resumable, never writes a partial output",
        description="Writes OUTPUT (same formats, by extension) with every input column, in input order, plus "
        "label, score_negative, score_neutral, score_positive, reason, reason_score, model_version, language, "
        "warnings and error, and beside it OUTPUT.report.json and OUTPUT.report.html (the archive report: "
        "counts and reach by sentiment and reason, per hour with the hours the bad-buzz alert would have fired, "
        "the loudest complaints). "
        "Run again after an interruption: only the missing chunks are scored.",
    )
    score.add_argument("input", type=Path, help="a .csv, .jsonl or .parquet file of tweets")
    score.add_argument("output", type=Path, help="where to write the scored rows (.csv, .jsonl or .parquet)")
    score.add_argument("--text-column", default="text", help="the column that holds the tweet (default: text)")
    score.add_argument("--model", type=Path, default=Settings.from_environment().model_path, help="model manifest")
    score.add_argument("--workers", type=int, default=1, help="processes, each with its own model (default 1)")
    score.add_argument("--chunk-size", type=int, default=1000, help="rows per chunk (the unit of resumption)")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    score.add_argument("--no-report", action="store_true", help="the scored rows only: no report figures or page")
    for field in CONTEXT_FIELDS:
        score.add_argument(
            f"--{field.replace('_', '-')}-column", metavar="COLUMN", help=f"the column of the context's {field} "
            f"(default: {field}, when the file has it)"
        )  # fmt: skip
    score.add_argument(
        "--alert-margin-points", type=float, default=BAD_BUZZ.margin_points,
        help=f"bad-buzz rule: points over the baseline share (default {BAD_BUZZ.margin_points:g}, as deployed)",
    )  # fmt: skip
    score.add_argument(
        "--alert-minimum-volume", type=int, default=BAD_BUZZ.minimum_volume,
        help=f"bad-buzz rule: readable tweets in the hour and in its baseline (default {BAD_BUZZ.minimum_volume})",
    )  # fmt: skip
    put = commands.add_parser(
        "archive",
        help="drop a file in the archive job's tweets-in and wait for its report (the local app of `make serve`)",
        description="Uploads FILE to tweets-in of the archive storage (--connection-string, else the "
        "ArchiveStorage setting, else the Azurite that `make serve` started), waits for the app to score it, "
        "prints where the output and report are and the report; with --out, downloads the output, the report "
        "and its page.",
    )
    put.add_argument("action", choices=["put"], help="put: drop a file and wait for its report")
    put.add_argument("file", type=Path, help="a .csv or .jsonl file of tweets")
    put.add_argument("--text-column", help="the column that holds the tweet (default: text)")
    for field in CONTEXT_FIELDS:
        put.add_argument(f"--{field.replace('_', '-')}-column", metavar="COLUMN", help=f"the column of {field}")
    put.add_argument("--connection-string", help="the storage account's connection string")
    put.add_argument("--out", type=Path, help="a folder to download the scored file and its report into")
    put.add_argument("--timeout", type=float, default=600, help="seconds to wait for the report (default 600)")
    args = parser.parse_args(argv)
    if args.command == "archive":
        return archive_put(args)
    if args.workers < 1 or args.chunk_size < 1:
        parser.error("--workers and --chunk-size must be at least 1")
    columns = context_columns({field: getattr(args, f"{field}_column") for field in CONTEXT_FIELDS})
    rule = AlertRule(args.alert_margin_points, args.alert_minimum_volume)
    job = Job(args.input, args.output, args.model, args.text_column, args.chunk_size, args.workers,
              tuple(columns.items()), not args.no_report, rule)  # fmt: skip
    try:
        summary = run(job, progress=not args.no_progress)
        if "report" in summary:
            summary["report_files"] = write_report(args.output, summary)
    except (ScoringError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk filled up, a file vanished mid-run: run again to resume
        print(f"error: {error.strerror or error} ({error.filename or 'output'}); run again to resume", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def write_report(output: Path, summary: dict[str, Any]) -> list[str]:
    """OUTPUT.report.json and OUTPUT.report.html beside the output, each written whole or not at all."""
    from .archive_page import page

    report = {key: value for key, value in summary.items() if key != "report"} | summary["report"]
    written = []
    for suffix, text in ((".report.json", json.dumps(report, ensure_ascii=False, indent=1)),
                         (".report.html", page(report, output.name))):  # fmt: skip
        path = output.with_name(output.name + suffix)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        written.append(str(path))
    return written


def archive_put(args: argparse.Namespace) -> int:
    from . import archive

    settings = Settings.from_environment()
    connection = args.connection_string or settings.archive_connection_string or _local_archive_storage()
    if not connection:
        print(
            "error: no archive storage: start the app with `make serve` (it starts Azurite), or pass "
            "--connection-string",
            file=sys.stderr,
        )
        return 2
    if not args.file.is_file():
        print(f"error: {args.file} not found: pass the file of tweets to drop", file=sys.stderr)
        return 2
    metadata = {"text_column": args.text_column} if args.text_column else {}
    metadata |= {f"{field}_column": getattr(args, f"{field}_column") for field in CONTEXT_FIELDS}
    metadata = {key: value for key, value in metadata.items() if value}
    storage = archive.Storage.from_connection_string(connection)
    try:
        job, report = archive.put(storage, args.file, metadata, args.timeout)
    except TimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"report: {archive.OUTBOX}/{job.report_name}", file=sys.stderr)
    if report.get("output"):
        print(f"output: {report['output']}", file=sys.stderr)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        outbox = storage.container(archive.OUTBOX)
        for name in (job.report_name, *([job.address, job.page_name] if report.get("output") else [])):
            (args.out / Path(name.replace("\\", "/")).name).write_bytes(outbox.download_blob(name).readall())
        print(f"downloaded into {args.out}", file=sys.stderr)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report.get("status", "").startswith("complete") else 1


def _local_archive_storage() -> str | None:
    """The connection string `make serve` leaves for its Azurite (Azurite's published development key)."""
    path = Path(__file__).resolve().parent.parent / LOCAL_ARCHIVE_STORAGE
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
