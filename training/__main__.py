"""Command line: `python -m training train|export|report|feedback-export|retrain|promote`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tweet_sentiment.feedback import FeedbackStore, FeedbackUnavailable
from tweet_sentiment.settings import Settings

from .config import QUICK_SAMPLE, Budget, DataOptions
from .data import SOURCES, DataError
from .families import BASELINES, FAMILIES
from .pipeline.export import ExportError
from .pipeline.report import build as build_report
from .promotion.champion import export_from_registry, promote
from .promotion.feedback import feedback_from_csv, feedback_rows
from .promotion.feedback_export import export_feedback
from .promotion.retrain import retrain
from .promotion.session import run_training_session
from .settings import SettingError, TrainingSettings
from .tracking import DEFAULT_STORE, TrackingError, has_store

DEFAULT_MODELS_DIR = Path("models")
# A quick (smoke) run has its own store, models and report, so that it can never replace the shipped champion.
QUICK_DIR = Path("quick")
READERS = ("report", "export", "retrain", "promote")  # commands that read a store: they never create one


def _parser(settings: TrainingSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        type=Path,
        help=f"local MLflow store folder (ignored when MLFLOW_TRACKING_URI is set; default {DEFAULT_STORE}/, "
        f"{QUICK_DIR / DEFAULT_STORE}/ for --quick)",
    )
    common.add_argument(
        "--models-dir",
        type=Path,
        help=f"where the champion is exported (default {DEFAULT_MODELS_DIR}/, "
        f"{QUICK_DIR / DEFAULT_MODELS_DIR}/ for --quick)",
    )

    budget = Budget.from_environment(settings)
    run = commands.add_parser(
        "train", parents=[common], help="train and compare models, pick the champion and export it"
    )
    run.add_argument("--source", choices=SOURCES, default="default")
    run.add_argument("--data-path", help="the CSV file for the sentiment140, airline-csv and csv sources")
    run.add_argument("--text-column", default="text", help="csv source: the tweet text column")
    run.add_argument("--label-column", default="sentiment", help="csv source: the label column")
    run.add_argument("--encoding", help="file encoding (default: latin-1 for default/sentiment140, else utf-8)")
    run.add_argument(
        "--train-on",
        choices=("airline", "all"),
        default="airline",
        help="default corpus: train on the airline tweets only, or add the other tweets too",
    )
    run.add_argument("--sample", type=int, help="stratified sample of this many tweets")
    run.add_argument(
        "--quick", action="store_true", help=f"a smoke run: {QUICK_SAMPLE} tweets, the [family.quick] hyperparameters"
    )
    run.add_argument(
        "--only",
        nargs="+",
        metavar="MODEL",
        help=f"families ({', '.join([*FAMILIES, *BASELINES])}) or family-variant names such as "
        "logreg-stem; default: all",
    )
    run.add_argument(
        "--latency-budget-ratio",
        type=float,
        default=budget.latency_ratio,
        help="serving budget: one tweet's p50 and a batch of 64, as a ratio to the reference graph timed in the "
        "same run (env SERVING_LATENCY_BUDGET_RATIO)",
    )
    run.add_argument(
        "--size-budget-mb",
        type=float,
        default=budget.size_mb,
        help="serving budget: ONNX file and assets (env SERVING_SIZE_BUDGET_MB)",
    )

    commands.add_parser("export", parents=[common], help="re-export the registered champion to ONNX")
    report = commands.add_parser("report", parents=[common], help="comparison table and charts from MLflow")
    report.add_argument("--out", type=Path, help="default reports/, quick/reports/ for a quick run's store")

    service = Settings.from_environment()  # the service's own settings name the feedback store
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--connection-string",
        default=service.feedback_connection_string,
        help="storage account connection string (default: the service's setting)",
    )
    storage.add_argument(
        "--table-endpoint",
        default=service.feedback_table_endpoint,
        help="table endpoint reached with your Azure identity (az login), instead",
    )
    storage.add_argument("--table", default=service.feedback_table)
    feedback = commands.add_parser(
        "feedback-export", parents=[storage], help="verified user feedback as a labelled CSV for training"
    )
    feedback.add_argument("--out", type=Path, default=Path("data/feedback.csv"))

    retrain = commands.add_parser(
        "retrain",
        parents=[common, storage],
        help="train a challenger on verified feedback; promote it only if it passes the gate",
        description="Reads verified feedback (Table Storage, or --feedback-csv), drops duplicates and every tweet "
        "of the frozen validation and test parts, holds out a share of the feedback, trains a challenger "
        "of the champion's family on the training part plus the feedback (MLflow alias "
        "@challenger), then gates it with MLflow's model validation: the frozen test part may not "
        "drop by more than RETRAIN_MAX_TEST_DROP (0.005), the held-out feedback must be at least "
        "as good, the behavioural suite may not regress, ONNX parity and the serving budget must "
        "hold. Only a challenger that passes becomes @champion and is exported; the decision goes "
        "to --report and the MLflow run.",
    )
    retrain.add_argument("--feedback-csv", type=Path, help="an exported feedback CSV instead of Table Storage")
    retrain.add_argument("--family", choices=sorted(FAMILIES), help="the challenger's family (default: the champion's)")
    retrain.add_argument("--quick", action="store_true", help="the [family.quick] hyperparameters (tests)")
    retrain.add_argument("--report", type=Path, default=Path("reports/promotion.md"))

    promote = commands.add_parser(
        "promote",
        parents=[common],
        help="make a registered version the champion and export it (also: roll back)",
        description="Moves the @champion alias to registry version N and re-exports it to --models-dir, with its "
        "test figures and parity check. Every version stays in the registry, so any earlier champion "
        "can be brought back.",
    )
    promote.add_argument("--version", type=int, required=True)
    return parser


def _existing_store(store: Path) -> None:
    """A reading command's local store must exist (MLflow would create an empty one and then find no champion
    in it); the error names the quick run's store when that one is there."""
    if has_store(store):
        return
    quick = QUICK_DIR / DEFAULT_STORE
    hint = f"; the quick run's store is {quick}/: add `--store {quick}`" if store != quick and has_store(quick) else ""
    raise TrackingError(f"no MLflow store in {store}/: `python -m training train` makes one{hint}")


def main(argv: list[str] | None = None) -> int:
    try:  # every setting, parsed before any work: a wrong value stops the command naming its variable
        settings = TrainingSettings.from_environment()
    except SettingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = _parser(settings).parse_args(argv)
    if hasattr(args, "store"):  # every command but feedback-export
        quick = getattr(args, "quick", False)
        args.store = args.store or (QUICK_DIR / DEFAULT_STORE if quick else DEFAULT_STORE)
        args.models_dir = args.models_dir or (QUICK_DIR / DEFAULT_MODELS_DIR if quick else DEFAULT_MODELS_DIR)
    # The project's progress at INFO; libraries' warnings only (ONNX Runtime's quantiser logs each tensor at
    # INFO on the root logger). Logs go to stderr, the command's JSON answer to stdout.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for project in ("training", "tweet_sentiment"):
        logging.getLogger(project).setLevel(logging.INFO)
    try:
        if args.command in READERS:
            _existing_store(args.store)
        if args.command == "train":
            data = DataOptions(
                source=args.source,
                path=args.data_path,
                text_column=args.text_column,
                label_column=args.label_column,
                encoding=args.encoding,
                train_on_all=args.train_on == "all",
                sample=QUICK_SAMPLE if args.quick and not args.sample else args.sample,
            )
            budget = Budget(latency_ratio=args.latency_budget_ratio, size_mb=args.size_budget_mb)
            summary = run_training_session(data, args.store, args.models_dir, args.only, args.quick, budget)
            if args.quick and "champion" in summary:  # a smoke run ends with its report: nothing more to find
                summary["report"] = str(build_report(args.store))
            print(json.dumps(summary, indent=2))
        elif args.command == "report":
            print(f"wrote {build_report(args.store, args.out)}")  # out None: by the kind of run (report.py)
        elif args.command == "export":
            print(f"exported {export_from_registry(args.store, args.models_dir)}")
        elif args.command == "retrain":
            if args.feedback_csv:
                feedback = feedback_from_csv(args.feedback_csv)
            else:
                store = FeedbackStore(args.connection_string, args.table, table_endpoint=args.table_endpoint)
                feedback = feedback_rows(store.all())
            decision = retrain(args.store, args.models_dir, feedback, args.report, args.family, args.quick)
            print(json.dumps(decision.summary(), indent=2))
        elif args.command == "promote":
            manifest = promote(args.version, args.store, args.models_dir)
            print(f"version {args.version} is the champion: exported {manifest}")
        else:
            store = FeedbackStore(args.connection_string, args.table, table_endpoint=args.table_endpoint)
            counts = export_feedback(store, args.out)
            skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(counts.items()) if reason != "written")
            print(
                f"{args.out}: {counts['written']} labelled tweets (skipped: {skipped or 'none'}); "
                f"train on them with --source csv --data-path {args.out}"
            )
    except (DataError, TrackingError, ExportError, FeedbackUnavailable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
