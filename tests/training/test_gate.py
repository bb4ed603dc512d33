"""The gate's rules that must not depend on chance: the behavioural suite judged case by case with a paired
test, the held-out feedback chosen by the tweets' text, never by their order of arrival, and the reasons staff
gave judged tweet by tweet."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from tests.conftest import copy_shipped_model
from training.config import DataOptions, load_split
from training.data import Split, reason_labels, tweet_key
from training.pipeline.behaviour import Outcomes
from training.promotion.feedback import usable_feedback
from training.promotion.gate import behaviour_regressions, reason_regressions
from tweet_sentiment.model import SentimentModel

CASES = [f"@united case {index}" for index in range(15)]
WORDS = ["bag", "seat", "crew", "gate", "food", "wifi", "lounge", "pilot", "refund", "app", "snack", "blanket"]


def tweets(count: int) -> list[str]:
    """Distinct tweets (numbers do not make a tweet new: feedback is compared on its normalised words)."""
    size = len(WORDS)
    return [f"@united {WORDS[i % size]} {WORDS[i // size % size]} {WORDS[i // size**2]} today" for i in range(count)]


def outcomes(failing: set[int]) -> dict[str, Outcomes]:
    return {"expressive": {case: (f"{case}: wrong" if index in failing else None) for index, case in enumerate(CASES)}}


def test_one_borderline_tweet_that_flips_does_not_refuse_a_challenger():
    # The champion fails 6 cases; the challenger fails those and one more (the AMD EPYC failure of main 1910326).
    champion, challenger = outcomes({0, 1, 2, 3, 4, 5}), outcomes({0, 1, 2, 3, 4, 5, 6})
    assert behaviour_regressions(champion, challenger) == []


def test_a_challenger_that_loses_a_skill_is_refused_by_check_and_over_the_suite():
    champion, challenger = outcomes(set()), outcomes({0, 1, 2, 3, 4, 5})
    reasons = behaviour_regressions(champion, challenger)
    assert [reason.split(":")[0] for reason in reasons] == ["behaviour, expressive", "behaviour, the whole suite"]
    assert "6 cases newly wrong against 0 repaired" in reasons[0]


def test_repairs_weigh_against_new_failures():
    # Five cases break, five others are repaired: a different model, not a worse one.
    champion, challenger = outcomes({5, 6, 7, 8, 9}), outcomes({0, 1, 2, 3, 4})
    assert behaviour_regressions(champion, challenger) == []


def feedback(texts: list[str], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": texts,
            "sentiment": labels,
            "prediction_id": [f"id-{index}" for index in range(len(texts))],
            "received_at": [f"2026-12-03T10:{index // 60:02d}:{index % 60:02d}" for index in range(len(texts))],
        }
    )


@pytest.fixture
def split() -> Split:
    frozen = pd.DataFrame({"text": ["@united a frozen test tweet"], "sentiment": ["neutral"]})
    return Split(train=frozen.iloc[:0], validation=frozen.iloc[:0], test=frozen)


def test_the_same_feedback_in_any_order_gives_the_same_training_and_held_out_rows(split):
    texts = tweets(300)
    labels = ["positive" if index % 3 else "negative" for index in range(300)]
    rows = feedback(texts, labels)
    arrived_otherwise = rows.sample(frac=1, random_state=3).reset_index(drop=True)
    arrived_otherwise["received_at"] = rows["received_at"]  # received in another order
    first = usable_feedback(rows, split, Counter(), 0.2)
    second = usable_feedback(arrived_otherwise, split, Counter(), 0.2)
    for one, other in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(one[["text", "sentiment"]], other[["text", "sentiment"]])
    train, holdout = first
    assert 0.1 < len(holdout) / len(rows) < 0.3
    assert not set(train["text"]) & set(holdout["text"])


def test_a_tweet_held_out_once_stays_held_out_as_feedback_grows(split):
    texts = tweets(400)
    early = usable_feedback(feedback(texts[:200], ["negative"] * 200), split, Counter(), 0.2)[1]
    later = usable_feedback(feedback(texts, ["negative"] * 400), split, Counter(), 0.2)[1]
    assert set(early["text"]) <= set(later["text"])


def test_a_challenger_that_misses_the_reasons_staff_gave_is_refused(tmp_path):
    """Real served models: the shipped champion, and the same graph whose manifest names its reason columns
    shifted by one (every reason it answers is another), judged on held-out feedback whose reasons staff gave
    (here the team's validation labels)."""
    champion_path = copy_shipped_model(tmp_path)
    shifted = json.loads(champion_path.read_text())
    shifted["reasons"] = shifted["reasons"][1:] + shifted["reasons"][:1]
    shifted_path = tmp_path / "shifted.json"
    shifted_path.write_text(json.dumps(shifted))
    champion, challenger = SentimentModel.load(champion_path), SentimentModel.load(shifted_path)
    labels = reason_labels()
    validation = load_split(DataOptions()).validation
    given = validation.assign(key=validation["text"].map(tweet_key)).merge(
        labels[labels["part"] == "validation"][["sha256", "reason"]], left_on="key", right_on="sha256"
    )
    holdout = given.head(60)[["text", "sentiment", "reason"]]
    refused = reason_regressions(champion, challenger, holdout)
    assert len(refused) == 1 and refused[0].startswith("held-out feedback reasons:")
    assert reason_regressions(challenger, champion, holdout) == []  # the reverse repairs them
    assert reason_regressions(champion, challenger, holdout.drop(columns="reason")) == []  # no reason given
