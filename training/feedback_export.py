"""Users' feedback, stored by the service in Table Storage, as a labelled CSV that `load_tweets("csv", ...)`
reads: corrections flow back into the next model."""

from __future__ import annotations

import csv
from pathlib import Path

from tweet_sentiment.feedback import FeedbackStore

COLUMNS = ("text", "sentiment", "prediction_id", "predicted_label", "correct", "received_at")


def export_feedback(store: FeedbackStore, out: Path) -> dict[str, int]:
    """Write one row per feedback whose right label is known: the prediction when users said it was right,
    their label when they said it was wrong. Returns counts of written and skipped feedback."""
    written = skipped = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(store.all(), key=lambda entity: (entity.get("received_at", ""), entity["RowKey"]))
    with out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        for entity in rows:
            label = entity["predicted_label"] if entity["correct"] else entity.get("expected_label")
            if not label:
                skipped += 1  # "wrong" without the right label: nothing to learn from
                continue
            writer.writerow({"text": entity["text"], "sentiment": label, "prediction_id": entity["RowKey"],
                             "predicted_label": entity["predicted_label"],
                             "correct": str(entity["correct"]).lower(), "received_at": entity.get("received_at", "")})
            written += 1
    return {"written": written, "skipped": skipped}
