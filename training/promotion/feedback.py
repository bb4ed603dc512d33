"""Verified feedback as training rows: read from the feedback table's entities or an exported CSV, then made
usable: duplicates and every tweet of the frozen validation and test parts dropped (feedback never leaks into
evaluation), and a share held out to judge a challenger. Which tweets are held out, and the order the others train
in, follow a hash of each tweet's text: the same feedback gives the same challenger whatever order it arrived in
(eight staff at once interleave at random), and a tweet held out once stays held out at every retraining."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from tweet_sentiment.text import TextConfig, tokens

from ..data import Split
from .feedback_export import training_row

# Feedback and evaluation tweets are compared on this form: case, handles, URLs and punctuation do not make
# a tweet new.
COMPARISON_TEXT = TextConfig(remove_stopwords=False, normalisation="none")


FRAME_COLUMNS = ["text", "sentiment", "reason", "prediction_id", "received_at"]


def normalised(text: str) -> str:
    return " ".join(tokens(text, COMPARISON_TEXT))


def _fraction(key: str) -> float:
    """A tweet's place in [0, 1), from the sha256 of its normalised text: uniform, and the same on every run."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:13], 16) / 16**13


def feedback_rows(entities: Iterable[dict[str, Any]]) -> tuple[pd.DataFrame, Counter[str]]:
    """Verified feedback with its right label (the user's when the prediction was wrong, the prediction's when
    right), oldest first; counts of the rows kept and dropped, by reason."""
    counts: Counter[str] = Counter()
    rows = []
    for entity in entities:
        row, outcome = training_row(entity)
        counts["verified" if row is not None else f"dropped: {outcome}"] += 1
        if row is not None:
            rows.append(row)
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.sort_values(["received_at", "prediction_id"], kind="stable").reset_index(drop=True), counts


def feedback_from_csv(path: Path) -> tuple[pd.DataFrame, Counter[str]]:
    """An exported feedback CSV (python -m training feedback-export): its rows were verified when exported."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"text", "sentiment", "prediction_id", "received_at"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{path.name} lacks the columns {sorted(missing)}: export it with `python -m training feedback-export`"
        )
    rows = frame.reindex(columns=FRAME_COLUMNS, fill_value="")  # exports made before reasons have no `reason`
    counts: Counter[str] = Counter({"verified": len(rows)})
    return rows.sort_values(["received_at", "prediction_id"], kind="stable").reset_index(drop=True), counts


def usable_feedback(
    feedback: pd.DataFrame, split: Split, counts: Counter[str], holdout_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feedback rows that may train and those held out to judge, after dropping duplicates (the latest
    feedback on a tweet wins) and every tweet of the frozen validation and test parts (feedback never leaks
    into evaluation). The held-out slice is about `holdout_share` of the tweets, chosen by the hash of their
    text before any training; both parts come in the hash's order, not the order of arrival."""
    frozen = {normalised(text) for part in (split.validation, split.test) for text in part["text"]}
    keys = feedback["text"].map(normalised)
    in_evaluation = keys.isin(frozen)
    counts["dropped: in the frozen validation or test part"] += int(in_evaluation.sum())
    kept = feedback[~in_evaluation].assign(key=keys[~in_evaluation])
    latest = kept.drop_duplicates("key", keep="last")
    counts["dropped: duplicate of a later feedback"] += len(kept) - len(latest)
    place = latest["key"].map(_fraction)
    latest = latest.assign(place=place).sort_values("place", kind="stable").drop(columns=["key"])
    held = latest["place"] < holdout_share if len(latest) >= 5 else latest["place"] < 0
    train, holdout = (part.drop(columns="place").reset_index(drop=True) for part in (latest[~held], latest[held]))
    counts["used: training"] = len(train)
    counts["used: held-out judge"] = len(holdout)
    return train, holdout
