"""Users' feedback, stored by the service in Table Storage, as a labelled CSV that `load_tweets("csv", ...)`
reads: corrections flow back into the next model.

Only verified feedback is exported: rows the service wrote after checking the prediction's signed token
(they name the key that signed it). The CSV is written to a temporary file beside the target and moved into
place at the end, so a failure never leaves a partial file behind.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tweet_sentiment.feedback import FeedbackStore
from tweet_sentiment.labels import NEGATIVE

COLUMNS = (
    "text",
    "sentiment",
    "reason",  # a negative tweet's complaint reason, when staff confirmed or corrected it; empty otherwise
    "prediction_id",
    "predicted_label",
    "correct",
    "model_version",
    "received_at",
)


def training_row(entity: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """The CSV row of one stored feedback, or None and why it is skipped."""
    if not entity.get("signing_key_id"):
        return None, "unverified"  # stored before predictions were signed, or not by the service
    text = entity.get("text")
    if not isinstance(text, str) or not text.strip():
        return None, "no text"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, "unreadable text"
    label = entity.get("predicted_label") if entity.get("correct") else entity.get("expected_label")
    if not label:
        return None, "wrong without the right label"
    return {
        "text": text,
        "sentiment": label,
        "reason": entity.get("expected_reason") or "" if label == NEGATIVE else "",
        "prediction_id": entity["RowKey"],
        "predicted_label": entity.get("predicted_label", ""),
        "correct": str(entity.get("correct")).lower(),
        "model_version": str(entity.get("model_version", "")),
        "received_at": entity.get("received_at", ""),
    }, "written"


def export_feedback(store: FeedbackStore, out: Path) -> Counter[str]:
    """Write one row per verified feedback whose right label is known: the prediction when users said it was
    right, their label when they said it was wrong. Returns how many rows were written and skipped, by reason."""
    counts: Counter[str] = Counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for entity in store.all():
        row, outcome = training_row(entity)
        counts[outcome] += 1
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda row: (row["received_at"], row["prediction_id"]))
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    counts["written"] += 0  # always reported, even when nothing was written
    return counts
