"""Classic models on TF-IDF features: the pipeline, and its small hyper-parameter search on validation."""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

FAMILY = "tfidf-logreg"

# Kept small on purpose: every candidate is fitted on the full training part.
SEARCH_GRID = {"C": (0.5, 1.0, 2.0, 4.0, 8.0), "class_weight": (None, "balanced")}


def tfidf_logreg(C: float = 1.0, class_weight: str | None = None, seed: int = 42) -> Pipeline:
    # sublinear_tf stays off and the token pattern stays sklearn's default: the ONNX converter reproduces
    # both exactly (see training/export.py).
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, dtype=np.float32)
    classifier = LogisticRegression(C=C, class_weight=class_weight, max_iter=2000, random_state=seed)
    return Pipeline([("tfidf", vectorizer), ("classifier", classifier)])


def search(train_texts: list[str], train_labels: list[str], validation_texts: list[str],
           validation_labels: list[str], seed: int = 42) -> tuple[Pipeline, dict, list[dict]]:
    """Fit every grid point on train, score macro-F1 on validation; return the best pipeline, its
    parameters and the table of all candidates."""
    results, best = [], None
    for C, class_weight in itertools.product(SEARCH_GRID["C"], SEARCH_GRID["class_weight"]):
        pipeline = tfidf_logreg(C=C, class_weight=class_weight, seed=seed).fit(train_texts, train_labels)
        score = f1_score(validation_labels, pipeline.predict(validation_texts), average="macro")
        params = {"C": C, "class_weight": class_weight or "none"}
        results.append({**params, "val_macro_f1": round(float(score), 5)})
        if best is None or score > best[0]:
            best = (score, pipeline, params)
    assert best is not None
    return best[1], best[2], results
