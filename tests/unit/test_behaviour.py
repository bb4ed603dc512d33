"""Behavioural tests of the served champion (models/): invariance, direction, minimum functionality and tweets
that speak in emoji, emoticons or punctuation."""

from __future__ import annotations

import pytest

from tests.conftest import SHIPPED_MANIFEST
from training.pipeline.behaviour import (
    EXPRESSIVE,
    TEMPLATES,
    direction_failures,
    invariance_failures,
    minimum_functionality_failures,
)
from tweet_sentiment.model import SentimentModel


@pytest.fixture(scope="module")
def champion() -> SentimentModel:
    return SentimentModel.load(SHIPPED_MANIFEST)


@pytest.mark.parametrize("template", TEMPLATES)
def test_changing_the_airline_handle_keeps_the_label(champion, template):
    assert invariance_failures(champion, [template]) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_adding_a_clear_complaint_moves_toward_negative(champion, template):
    assert direction_failures(champion, [template]) == []


def test_minimum_functionality(champion):
    # A sentiment model of this quality gets plain tweets right; one slip in twelve is tolerated.
    assert len(minimum_functionality_failures(champion)) <= 1


@pytest.mark.parametrize(("expected", "kind", "tweet"), EXPRESSIVE, ids=[tweet for _, _, tweet in EXPRESSIVE])
def test_emoji_emoticons_and_punctuation_are_read(champion, expected, kind, tweet):
    # Each of these carries its sentiment in emoji, emoticons or punctuation only; none may be missed.
    assert champion.predict([tweet])[0].label == expected
