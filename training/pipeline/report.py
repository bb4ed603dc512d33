"""The comparison report, built from MLflow: a Markdown table and two charts in reports/."""

from __future__ import annotations

import datetime as dt
import os
import platform
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import numpy as np
from adjustText import adjust_text
from matplotlib.ticker import FuncFormatter, NullFormatter
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tweet_sentiment.labels import LABELS, REASONS
from tweet_sentiment.model import SentimentModel

from .. import tracking
from ..config import RUN_KIND
from ..data import reason_labels
from . import evaluate
from .behaviour import known_failures

COLUMNS = [  # (header, metric, format)
    ("val macro-F1", "val_macro_f1", "{:.4f}"),
    ("95% interval", None, None),
    ("val accuracy", "val_accuracy", "{:.4f}"),
    ("F1 neg / neu / pos", None, None),
    ("ROC-AUC", "val_roc_auc", "{:.3f}"),
    ("binary acc.", "val_binary_accuracy", "{:.3f}"),
    ("ONNX MB", "onnx_size_mb", "{:.1f}"),
    ("p50 / p95 ms", None, None),
    ("batch 64 ms", "latency_batch64_ms_p50", "{:.1f}"),
    ("x reference: 1 / 64", None, None),
    ("parity", "parity_label_agreement", "{:.1%}"),
    ("budget", "within_budget", None),
    ("train s", "training_seconds", "{:.0f}"),
]


def latest_runs(validation_sha256: str) -> list[Run]:
    """The newest run of each model evaluated on this validation part."""
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    if experiment is None:
        raise tracking.TrackingError(f"no experiment {tracking.EXPERIMENT}: run `python -m training train` first")
    runs = MlflowClient().search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    newest: dict[str, Run] = {}
    for run in runs:
        if run.data.params.get("split.validation.sha256") == validation_sha256 and "val_macro_f1" in run.data.metrics:
            newest.setdefault(run.info.run_name, run)
    return sorted(newest.values(), key=lambda run: -run.data.metrics["val_macro_f1"])


def _store_name(uri: str) -> str:
    """The tracking store as a reader can find it: a local store by its path in the project (never the
    machine's absolute path), a server by its URI without credentials."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        try:
            return f"the local store `{path.resolve().relative_to(Path.cwd())}`"
        except ValueError:
            return f"a local store `{path.name}`"
    return f"`{urlsplit(uri)._replace(netloc=urlsplit(uri).hostname or '').geturl()}`"


def _interval(metrics: dict[str, float], prefix: str) -> str:
    """The bootstrap interval of macro-F1 (training/pipeline/evaluate.py), "–" for runs logged before it existed."""
    low, high = metrics.get(f"{prefix}_macro_f1_ci95_low"), metrics.get(f"{prefix}_macro_f1_ci95_high")
    return f"{low:.3f}–{high:.3f}" if low is not None and high is not None else "–"


def _cell(run, metric: str | None, template: str | None, header: str) -> str:
    metrics = run.data.metrics
    if header == "95% interval":
        return _interval(metrics, "val")
    if header == "F1 neg / neu / pos":
        return " / ".join(f"{metrics.get(f'val_f1_{label}', float('nan')):.3f}" for label in LABELS)
    if header == "p50 / p95 ms":
        if "latency_single_ms_p95" not in metrics:
            return "–"
        return f"{metrics['latency_single_ms_p50']:.2f} / {metrics['latency_single_ms_p95']:.2f}"
    if header == "x reference: 1 / 64":
        if "latency_single_p50_ratio" not in metrics:
            return "–"
        return f"{metrics['latency_single_p50_ratio']:.2f} / {metrics['latency_batch64_ratio']:.2f}"
    if header == "budget":
        if run.data.tags.get("export_error"):
            return "parity failed"
        if metrics.get("within_budget") == 0.0 and run.data.tags.get("budget_misses"):
            return f"no: {run.data.tags['budget_misses']}"
        return {1.0: "yes", 0.0: "no"}.get(metrics.get("within_budget"), "–")
    value = metrics.get(metric)
    return template.format(value) if value is not None and template else "–"


def build(store: Path, out_dir: Path | None = None) -> Path:
    """The report of the champion's split; by default in reports/, or quick/reports/ when the champion came
    from a quick run (its figures are a smoke test's, never the shipped ones)."""
    tracking.configure(store)
    champion = tracking.champion()
    champion_run = tracking.run_of(champion)
    validation = champion_run.data.params["split.validation.sha256"]
    runs = latest_runs(validation)
    kind = champion_run.data.tags.get(RUN_KIND, "full")
    out_dir = out_dir or (Path("quick/reports") if kind == "quick" else Path("reports"))
    out_dir.mkdir(parents=True, exist_ok=True)

    params = champion_run.data.params
    lines = [
        "# Model comparison",
        "",
        f"Built {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (`python -m training report`, or the end of "
        f"`train --quick`) from MLflow ({_store_name(mlflow.get_tracking_uri())}). Champion trained on: "
        f"{champion_run.data.tags.get('machine.cpu', '?')} (int8: {champion_run.data.tags.get('machine.int8', '?')}), "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "**A quick smoke run** (a sample of the corpus, the `[family.quick]` hyperparameters): these figures test "
        "the pipeline and say nothing of the models."
        if kind == "quick"
        else "A full run of the committed recipe (`python -m training train`, training/hyperparameters.toml).",
        "",
        f"Protocol: the airline tweets of the default corpus, stratified split with seed {params.get('data.seed')}: "
        f"validation {params['split.validation.size']} tweets, test {params['split.test.size']} tweets (used once, by "
        "the champion). Every figure below is on validation; latency is the served ONNX graph with the shared text "
        "processing, ONNX Runtime, one thread, one tweet at a time (p50/p95) and a batch of 64 (p50), in "
        "milliseconds of the machine above and as a ratio to the reference graph (the served architecture, "
        "all-MiniLM-L6-v2 int8, timed alternately with each model in the same run: the ratio holds on any CPU). "
        f"Budget: one tweet's p50 and a batch of 64 at most {params.get('budget.latency_ratio', '-')}x the "
        f"reference, and at most {params.get('budget.size_mb', '-')} MB of files.",
        "",
        "| model | " + " | ".join(header for header, _, _ in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    frontier = pareto_frontier(runs)
    for run in runs:
        name = run.info.run_name + (" **(champion)**" if run.info.run_id == champion.run_id else "")
        name += " (frontier)" if run.info.run_id in frontier else ""
        lines.append(
            f"| {name} | "
            + " | ".join(_cell(run, metric, template, header) for header, metric, template in COLUMNS)
            + " |"
        )
    lines += ["", _ties(champion_run, runs)]
    test = champion_run.data.metrics
    lines += [
        "",
        f"## Champion: {champion_run.info.run_name} (registry version {champion.version}, "
        f"`models:/{tracking.MODEL_NAME}@{tracking.CHAMPION}`)",
        "",
        "| test part | accuracy | macro-F1 | 95% interval | F1 neg / neu / pos | ROC-AUC | binary accuracy "
        "| parity (labels, max diff) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {params['split.test.size']} airline tweets | {test.get('test_accuracy', float('nan')):.4f} | "
        f"{test.get('test_macro_f1', float('nan')):.4f} | {_interval(test, 'test')} | "
        + " / ".join(f"{test.get(f'test_f1_{label}', float('nan')):.3f}" for label in LABELS)
        + f" | {test.get('test_roc_auc', float('nan')):.3f} | {test.get('test_binary_accuracy', float('nan')):.3f} | "
        f"{test.get('test_parity_label_agreement', float('nan')):.1%}, "
        f"{test.get('test_parity_max_probability_difference', float('nan')):.1e} |",
        "",
        "![macro-F1 per model](macro_f1.png)",
        "",
        "![latency against macro-F1](latency_vs_macro_f1.png)",
        "",
        '"(frontier)": the Pareto frontier of the exported models, no other model being at least as good on '
        "validation macro-F1, latency (p50, as a ratio to the reference) and size and better on one. The champion "
        "is the best macro-F1 within the budget, which need not be on the frontier's fastest end.",
        "",
    ]
    lines += _reasons(champion_run, runs, validation, out_dir)
    lines += _calibration(champion_run, out_dir)
    lines += _known_failures(champion_run.info.run_id)
    errors = [(run.info.run_name, run.data.tags["export_error"]) for run in runs if run.data.tags.get("export_error")]
    if errors:
        lines += ["## Not exported", ""] + [f"- {name}: {error}" for name, error in errors] + [""]
    report_path = out_dir / "comparison.md"
    report_path.write_text("\n".join(lines), encoding="utf-8")
    _charts(
        runs,
        champion_run.info.run_id,
        out_dir,
        float(params.get("budget.latency_ratio", 1.1)),
        float(params.get("budget.size_mb", 30)),
    )
    return report_path


LATENCY = "latency_single_p50_ratio"  # what the frontier and the chart compare: CPU-independent


def figures(run: Run) -> tuple[float, float, float]:
    """(-macro-F1, latency ratio, size): lower is better on each."""
    metrics = run.data.metrics
    return (-metrics["val_macro_f1"], metrics[LATENCY], metrics["onnx_size_mb"])


def pareto_frontier(runs: list[Run]) -> set[str]:
    """Run ids of the exported runs that no other exported run dominates on (macro-F1 up, latency and size
    down)."""
    exported = [run for run in runs if LATENCY in run.data.metrics and "onnx_size_mb" in run.data.metrics]

    frontier = set()
    for run in exported:
        mine = figures(run)
        dominated = any(
            all(o <= m for o, m in zip(figures(other), mine, strict=True)) and figures(other) != mine
            for other in exported
            if other is not run
        )
        if not dominated:
            frontier.add(run.info.run_id)
    return frontier


def _ties(champion_run: Run, runs: list[Run]) -> str:
    """The models whose validation macro-F1 lies inside the champion's 95% interval: a tie on this validation
    set (the champion is chosen among them by the budget and then by speed, not by a measurable difference)."""
    metrics = champion_run.data.metrics
    low, high = metrics.get("val_macro_f1_ci95_low"), metrics.get("val_macro_f1_ci95_high")
    if low is None or high is None:
        return "The champion's validation interval was not logged: ties cannot be called."
    tied = [
        f"{run.info.run_name} ({run.data.metrics['val_macro_f1']:.4f})"
        for run in runs
        if run.info.run_id != champion_run.info.run_id and low <= run.data.metrics["val_macro_f1"] <= high
    ]
    interval = f"{low:.3f}–{high:.3f}"
    if not tied:
        return f"No other model's validation macro-F1 lies inside the champion's 95% interval ({interval})."
    return f"Ties: inside the champion's 95% interval ({interval}), not measurably different on validation: " + (
        ", ".join(tied) + "."
    )


def _newest_named(validation_sha256: str, name: str) -> Run | None:
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    assert experiment is not None  # latest_runs found it
    for run in MlflowClient().search_runs(
        [experiment.experiment_id], f"attributes.run_name = '{name}'", order_by=["attributes.start_time DESC"]
    ):
        if run.data.params.get("split.validation.sha256") == validation_sha256:
            return run
    return None


def _copied(run: Run, artifact: str, out_dir: Path, name: str) -> bool:
    """An artifact of a run copied into the report's folder; False when the run has none."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            found = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=artifact, dst_path=folder)
        except (MlflowException, OSError):  # an older run, or a family without that artifact
            return False
        (out_dir / name).write_bytes(Path(found).read_bytes())
    return True


def _reason_answers(run: Run) -> dict[str, str]:
    return mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/val_reason/predicted.json")


def _reasons(champion_run: Run, runs: list[Run], validation_sha256: str, out_dir: Path) -> list[str]:
    """The reason head's figures on the team's validation labels (docs/reasons.md), beside the TF-IDF
    baseline's, the champion's paired difference against it and its confusion matrix."""
    baseline = _newest_named(validation_sha256, "reason-baseline-tfidf-logreg")
    headed = [run for run in runs if "val_reason_macro_f1" in run.data.metrics] + ([baseline] if baseline else [])
    if not headed:
        return []
    lines = [
        "## Reasons",
        "",
        "The complaint reason of each negative tweet, on the validation tweets the team labelled (docs/reasons.md; "
        "two labellers agree with Cohen's kappa given there, the ceiling of any model).",
        "",
        "| model | reason macro-F1 | 95% interval | accuracy | " + " / ".join(REASONS) + " (F1) |",
        "|---|---|---|---|---|",
    ]
    for run in sorted(headed, key=lambda run: -run.data.metrics["val_reason_macro_f1"]):
        metrics = run.data.metrics
        name = run.info.run_name + (" **(champion)**" if run.info.run_id == champion_run.info.run_id else "")
        lines.append(
            f"| {name} | {metrics['val_reason_macro_f1']:.4f} | {_interval(metrics, 'val_reason')} | "
            f"{metrics['val_reason_accuracy']:.4f} | "
            + " / ".join(f"{metrics.get(f'val_reason_f1_{reason}', float('nan')):.2f}" for reason in REASONS)
            + " |"
        )
    if baseline and "val_reason_macro_f1" in champion_run.data.metrics:
        mine, theirs = _reason_answers(champion_run), _reason_answers(baseline)
        gold = reason_labels().set_index("sha256")["reason"]
        keys = sorted(set(mine) & set(theirs))
        answers = (
            gold.loc[keys].to_numpy(),
            np.array([theirs[key] for key in keys]),
            np.array([mine[key] for key in keys]),
        )
        point, low, high = evaluate.paired_difference(*answers, list(REASONS))
        accuracy, accuracy_low, accuracy_high = evaluate.paired_accuracy_difference(*answers)
        lines += [
            "",
            f"Champion minus baseline on the same {len(keys)} tweets: reason macro-F1 {point:+.4f} "
            f"(paired 95% interval {low:+.4f} to {high:+.4f}), accuracy {accuracy:+.4f} "
            f"({accuracy_low:+.4f} to {accuracy_high:+.4f}).",
        ]
    if _copied(champion_run, "val/val_reason_confusion_matrix.png", out_dir, "reason_confusion.png"):
        lines += ["", "![the champion's reasons on validation](reason_confusion.png)"]
    return [*lines, ""]


def _calibration(champion_run: Run, out_dir: Path) -> list[str]:
    """Temperature scaling of the champion: its temperatures and unsure lines, ECE before and after on
    validation (where the temperatures were fitted) and on test, and the reliability diagrams."""
    metrics = champion_run.data.metrics
    if "val_ece" not in metrics:
        return []
    try:
        fitted = mlflow.artifacts.load_dict(f"runs:/{champion_run.info.run_id}/calibration.json")
    except (MlflowException, OSError):  # a run logged before calibration
        return []
    lines = [
        "## Calibration",
        "",
        "Temperature scaling fitted on validation (training/calibration.py), in the manifest; expected "
        "calibration error over 15 equal-width bins of the top score. The unsure line: the highest top score "
        "under which validation answers are right less than 60% of the time.",
        "",
        "| head | temperature | unsure below | ECE validation, raw -> calibrated | ECE test, raw -> calibrated |",
        "|---|---|---|---|---|",
        f"| sentiment | {fitted['temperature']} | {fitted['unsure_below']:.2f} | {metrics['val_ece_raw']:.4f} -> "
        f"{metrics['val_ece']:.4f} | {metrics.get('test_ece_raw', float('nan')):.4f} -> "
        f"{metrics.get('test_ece', float('nan')):.4f} |",
    ]
    if "reason_temperature" in fitted:
        lines.append(
            f"| reason | {fitted['reason_temperature']} | {fitted['reason_unsure_below']:.2f} | "
            f"{metrics['val_reason_ece_raw']:.4f} -> {metrics['val_reason_ece']:.4f} | no test labels |"
        )
    lines.append("")
    for artifact, title in (
        ("calibration/val_sentiment_reliability.png", "sentiment on validation"),
        ("calibration/val_reason_reliability.png", "reasons on validation"),
        ("calibration/test_sentiment_reliability.png", "sentiment on test"),
    ):
        name = Path(artifact).name
        if _copied(champion_run, artifact, out_dir, name):
            lines += [f"![reliability, {title}]({name})", ""]
    return lines


def _known_failures(run_id: str) -> list[str]:
    """The champion's answers to the documented hard cases (training/pipeline/behaviour.py)."""
    with tempfile.TemporaryDirectory() as folder:
        onnx_dir = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="onnx", dst_path=folder))
        answers = known_failures(SentimentModel.load(onnx_dir / "model.json"))
    lines = [
        "## Known failures",
        "",
        "Hard cases the champion is known to miss (kept in training/pipeline/behaviour.py; "
        "not a test: they document the limits).",
        "",
        "| kind | tweet | expected | champion |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {kind} | {tweet} | {expected} | {got}{'' if got == expected else ' (wrong)'} |"
        for expected, kind, tweet, got in answers
    ]
    return [*lines, ""]


def _charts(runs: list, champion_id: str, out_dir: Path, budget_ratio: float, budget_size_mb: float) -> None:
    families = sorted({run.data.tags.get("family", "?") for run in runs})
    colours = {family: plt.get_cmap("tab10")(index) for index, family in enumerate(families)}
    ordered = sorted(runs, key=lambda run: run.data.metrics["val_macro_f1"])
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(ordered) + 1.5))
    axis.barh(
        [run.info.run_name for run in ordered],
        [run.data.metrics["val_macro_f1"] for run in ordered],
        color=[colours[run.data.tags.get("family", "?")] for run in ordered],
    )
    for index, run in enumerate(ordered):
        axis.text(
            run.data.metrics["val_macro_f1"] + 0.005,
            index,
            f"{run.data.metrics['val_macro_f1']:.3f}",
            va="center",
            fontsize=8,
        )
    axis.set_xlabel("validation macro-F1 (airline tweets)")
    axis.set_xlim(0, 1)
    axis.set_title("Macro-F1 per model and variant")
    figure.savefig(out_dir / "macro_f1.png", dpi=110, bbox_inches="tight")
    plt.close(figure)

    timed = [run for run in runs if LATENCY in run.data.metrics]
    figure, (latency_axis, size_axis) = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    panels = (
        (latency_axis, LATENCY, budget_ratio, f"budget {budget_ratio:g}x the reference",
         "one tweet's p50 / the reference graph's, same run (log scale)"),
        (size_axis, "onnx_size_mb", budget_size_mb, f"budget {budget_size_mb:g} MB", "model files, MB (log scale)"),
    )  # fmt: skip
    for axis, metric, budget, budget_label, label in panels:
        names, xs, ys = [], [], []
        for run in timed:
            family = run.data.tags.get("family", "?")
            champion = run.info.run_id == champion_id
            point = (run.data.metrics[metric], run.data.metrics["val_macro_f1"])
            axis.scatter(
                *point, color=colours[family], s=90 if champion else 30, edgecolors="black" if champion else "none"
            )
            names.append(axis.text(*point, run.info.run_name, fontsize=7))
            xs.append(point[0])
            ys.append(point[1])
        axis.axvline(budget, color="grey", linestyle="--", label=budget_label)
        axis.set_xscale("log")
        # Names of close models (the transformers cluster near the budget line) are moved apart, with a line
        # to their point.
        adjust_text(names, x=xs, y=ys, ax=axis, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel(label)
        axis.legend(loc="lower right")
    latency_axis.set_ylabel("validation macro-F1")
    figure.suptitle("Macro-F1 against latency and size; the champion is circled (ONNX Runtime, 1 thread)")
    figure.savefig(out_dir / "latency_vs_macro_f1.png", dpi=110, bbox_inches="tight")
    plt.close(figure)
