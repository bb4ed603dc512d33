"""Behavioural tests of the served champion (models/): invariance, direction and minimum functionality."""

from __future__ import annotations

import pytest

from tests.conftest import SHIPPED_MANIFEST
from tweet_sentiment.model import SentimentModel

HANDLES = ["@united", "@JetBlue", "@SouthwestAir", "@AmericanAir", "@USAirways", "@VirginAmerica", "@AirParadis"]
TEMPLATES = [
    "{handle} lost my luggage and nobody at the desk could help, terrible service",
    "{handle} thank you for the upgrade, the crew was wonderful",
    "{handle} what time does boarding start for the flight to Boston tomorrow?",
    "{handle} my flight has been delayed 4 hours with no explanation",
    "{handle} great flight, friendly staff and we landed early!",
]
COMPLAINTS = [" Worst airline ever.", " Never flying with you again, awful.", " Absolutely terrible customer service."]
MINIMUM = [
    ("negative", "@united my flight was cancelled and I am stuck at the airport, this is awful"),
    ("negative", "@AmericanAir rude staff, dirty plane and a two hour delay. Horrible"),
    ("negative", "@USAirways you lost my bag again, worst customer service ever"),
    ("negative", "@SouthwestAir on hold for three hours and still no answer, unacceptable"),
    ("positive", "@JetBlue thank you so much, the crew was amazing and the flight was perfect"),
    ("positive", "@VirginAmerica love the new seats, great experience, thanks!"),
    ("positive", "@united awesome service today, the gate agent was so helpful, thank you"),
    ("positive", "@SouthwestAir best airline ever, friendly crew and on time"),
    ("neutral", "@united what is the baggage allowance for international flights?"),
    ("neutral", "@JetBlue do you fly from Boston to Fort Lauderdale on Sundays?"),
    ("neutral", "@SouthwestAir can I change my flight online or do I need to call?"),
    ("neutral", "@AmericanAir is there wifi on the flight from Dallas to Chicago?"),
]


@pytest.fixture(scope="module")
def champion() -> SentimentModel:
    return SentimentModel.load(SHIPPED_MANIFEST)


@pytest.mark.parametrize("template", TEMPLATES)
def test_changing_the_airline_handle_keeps_the_label(champion, template):
    labels = {prediction.label for prediction in champion.predict([template.format(handle=h) for h in HANDLES])}
    assert len(labels) == 1, labels


@pytest.mark.parametrize("template", TEMPLATES)
def test_adding_a_clear_complaint_moves_toward_negative(champion, template):
    tweet = template.format(handle="@united")
    base = champion.predict([tweet])[0].scores["negative"]
    for complaint in COMPLAINTS:
        after = champion.predict([tweet + complaint])[0].scores["negative"]
        # Strictly more negative, except where the tweet was already saturated (then: no real drop).
        assert after > base if base < 0.95 else after >= base - 0.01, (complaint, base, after)


def test_minimum_functionality(champion):
    predicted = [prediction.label for prediction in champion.predict([text for _, text in MINIMUM])]
    failures = [
        (expected, text, got) for (expected, text), got in zip(MINIMUM, predicted, strict=True) if got != expected
    ]
    # A sentiment model of this quality gets plain tweets right; one slip in twelve is tolerated.
    assert len(failures) <= 1, failures
