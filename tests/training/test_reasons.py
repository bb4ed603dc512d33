"""The team's complaint-reason labels (training/reasons.csv, made against docs/reasons.md): what the guideline
promises of them holds, and the agreement it reports is the one the file gives."""

from __future__ import annotations

import re

import pytest
from sklearn.metrics import cohen_kappa_score

from scripts.reason_holdout import held_out
from tests.conftest import ROOT
from training.config import DataOptions, load_split
from training.data import reason_labels, tweet_key
from tweet_sentiment.labels import REASONS


@pytest.fixture(scope="module")
def labels():
    return reason_labels()


@pytest.fixture(scope="module")
def split():
    return load_split(DataOptions())


def test_every_labelled_tweet_is_a_negative_airline_tweet_of_its_part_and_never_a_test_tweet(labels, split):
    for part in ("train", "validation"):
        tweets = getattr(split, part)
        negative = tweets[(tweets["sentiment"] == "negative") & tweets["airline"]]
        keys = set(negative["text"].map(tweet_key))
        assert set(labels.loc[labels["part"] == part, "sha256"]) <= keys
    assert not set(labels["sha256"]) & set(split.test["text"].map(tweet_key))
    assert labels["sha256"].is_unique


def test_enough_tweets_of_every_reason_are_labelled(labels):
    counts = labels["part"].value_counts()
    assert counts["train"] >= 3000 and counts["validation"] >= 500
    assert set(labels["reason"]) == set(REASONS)
    assert labels["labeller"].str.fullmatch(r"A\d+").all()


def test_the_agreement_the_guideline_reports_is_the_files(labels):
    double = labels[labels["second_reason"] != ""]
    assert len(double) >= 200
    kappa = cohen_kappa_score(double["reason"], double["second_reason"])
    guideline = (ROOT / "docs" / "reasons.md").read_text(encoding="utf-8")
    reported = re.search(r"agree\s+on\s+(\d+)\s+of\s+(\d+)\s.*?Cohen's\s+kappa (\d\.\d\d)", guideline, re.DOTALL)
    assert reported, "docs/reasons.md reports the agreement as 'agree on N of M ... Cohen's kappa K'"
    agreed, sample, reported_kappa = int(reported[1]), int(reported[2]), float(reported[3])
    assert (agreed, sample) == (int((double["reason"] == double["second_reason"]).sum()), len(double))
    assert reported_kappa == round(kappa, 2)


def test_the_held_out_labels_are_every_label_a_model_never_learnt_and_never_a_test_tweet(labels, split):
    """scripts/reason_holdout.py judges a model on these: a training label it learnt must never be among them."""
    training = labels[labels["part"] == "train"]
    learnt = dict(zip(training["sha256"][::2], training["reason"][::2], strict=True))  # a model that saw half
    known = dict(zip(labels["sha256"], labels["reason"], strict=True))
    parts = held_out(split.train["text"].tolist(), split.validation["text"].tolist(), learnt, known)
    keys = {part: [tweet_key(text) for text in texts] for part, texts in parts.items()}
    assert set(keys["validation"]) == set(labels.loc[labels["part"] == "validation", "sha256"])
    assert set(keys["later training labels"]) == set(training["sha256"]) - set(learnt)
    both = keys["validation"] + keys["later training labels"]  # the script's "both" row
    assert len(set(both)) == len(both) and not set(both) & set(learnt)
    assert not set(both) & set(split.test["text"].map(tweet_key))
