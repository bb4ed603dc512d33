"""The retraining's decision (`Decision`) and reports/promotion.md, its reasons and figures, for the pull request
it opens. retrain.py makes the decision and imports this module; this module imports nothing of retrain."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

from .gate import GateSettings


@dataclasses.dataclass
class Decision:
    promoted: bool
    reasons: list[str]  # why it was refused; empty when promoted
    champion_version: str
    challenger_version: str | None
    figures: dict[str, dict[str, float]]  # check -> {"champion": ..., "challenger": ..., "threshold": ...}
    feedback_counts: dict[str, int]
    behaviour: dict[str, dict[str, int]]  # check -> {"champion": failures, "challenger": failures}

    def summary(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_report(decision: Decision, report: Path, settings: GateSettings) -> None:
    verdict = (
        f"**Promoted**: version {decision.challenger_version} is the champion and is exported to models/."
        if decision.promoted
        else f"**Refused**: version {decision.champion_version} stays the champion."
    )
    lines = [
        "# Promotion decision",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `python -m training retrain`: champion version "
        f"{decision.champion_version}, challenger version {decision.challenger_version or '(none)'}.",
        "",
        verdict,
        "",
    ]
    if decision.reasons:
        lines += ["Reasons:", ""] + [f"- {reason}" for reason in decision.reasons] + [""]
    lines += [
        "## Figures (through the serving package)",
        "",
        f"Thresholds: the frozen test part may not drop by more than {settings.max_test_drop}; on the "
        f"held-out feedback (about {settings.holdout_share:.0%} of its tweets, chosen by a hash of their text, never "
        "trained on) and on the behavioural suite (by check and over the suite) the challenger may not be "
        "measurably worse: a one-sided exact paired test (McNemar's) on the tweets whose answer changed.",
        "",
        "| check | champion | challenger | threshold |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {values['champion']:.4f} | {values['challenger']:.4f} | {_threshold(values['threshold'])} |"
        for name, values in decision.figures.items()
    ]
    lines += ["", "| behaviour check | champion failures | challenger failures |", "|---|---|---|"]
    lines += [
        f"| {check} | {values['champion']} | {values['challenger']} |" for check, values in decision.behaviour.items()
    ]
    lines += ["", "## Feedback", "", "| rows | count |", "|---|---|"]
    lines += [f"| {reason} | {count} |" for reason, count in sorted(decision.feedback_counts.items())]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _threshold(value: float) -> str:
    return "not measurably worse (paired test)" if math.isnan(value) else f"{value:.4f}"
