"""VADER, the rule-based baseline that needs no training: the row every model must beat."""

from __future__ import annotations

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tweet_sentiment.text import TextConfig, clean

# VADER reads raw text (case, punctuation and emoticons carry its signal): only entities and handles go.
VADER_TEXT = TextConfig(lowercase=False, ascii_fold=False, expand_abbreviations=False, split_hashtags=True)
THRESHOLD = 0.05  # VADER's documented compound-score cut-offs


def score(texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """Scores (negative, neutral, positive proportions) and labels by VADER's compound rule."""
    analyzer = SentimentIntensityAnalyzer()
    rows, labels = [], []
    for text in texts:
        polarity = analyzer.polarity_scores(clean(text, VADER_TEXT))
        rows.append([polarity["neg"], polarity["neu"], polarity["pos"]])
        compound = polarity["compound"]
        labels.append("positive" if compound >= THRESHOLD else "negative" if compound <= -THRESHOLD else "neutral")
    probabilities = np.asarray(rows, dtype=np.float64)
    # A text with no scored word is all neutral; keep every row a distribution.
    return probabilities / probabilities.sum(axis=1, keepdims=True).clip(min=1e-9), labels
