"""The one schema of the HTTP edge (tweet_sentiment/schema.py): what the page reads and sends is in it, and the
API's messages come from its validation errors."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT
from tweet_sentiment.service import BadRequest, parse_feedback, parse_predict, schemas
from tweet_sentiment.settings import Settings

PAGE = (ROOT / "tweet_sentiment" / "ui.html").read_text(encoding="utf-8")
SETTINGS = Settings()
LABELS = ["negative", "neutral", "positive"]


def test_every_field_the_page_reads_is_in_the_answer_models():
    models = schemas(SETTINGS, LABELS)
    answer_fields = {*models.tweet_answer.model_fields, *models.batch_answer.model_fields, "error"}
    read = set(re.findall(r"\b(?:answer|body)\.(\w+)", PAGE))
    assert {"label", "scores", "warnings", "predictions", "labels", "prediction_id", "error"} <= read  # the scan works
    assert read <= answer_fields


def test_the_feedback_the_page_sends_is_the_feedback_model():
    sent = re.search(r"const payload = \{(.*?)\};", PAGE, re.S)
    assert sent is not None
    properties = [part.split(":")[0].strip() for part in sent.group(1).split(",")]  # `text` alone: shorthand
    keys = set(properties) | set(re.findall(r"\bpayload\.(\w+)\s*=", PAGE))
    assert keys <= set(schemas(SETTINGS, LABELS).feedback_request.model_fields)
    assert {"prediction_id", "prediction_token", "text", "correct"} <= keys


def feedback(**changes) -> bytes:
    body = {
        "prediction_id": "3f2b8f0e-8d6c-4c1e-9d7a-1b2c3d4e5f60",
        "prediction_token": "t",
        "text": "@united lost my bag",
        "predicted_label": "positive",
        "correct": False,
        "expected_label": "negative",
        **changes,
    }
    return json.dumps({key: value for key, value in body.items() if value is not ...}).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prediction_id": ...}, "field 'prediction_id' is required: the id that /api/predict returned"),
        ({"prediction_id": "abc"}, "field 'prediction_id' must be the UUID that /api/predict returned"),
        ({"prediction_id": 7}, "field 'prediction_id' is required"),
        ({"prediction_token": ""}, "field 'prediction_token' is required: the token that /api/predict returned"),
        ({"text": None}, "field 'text' is required: the tweet to classify"),
        ({"text": "  "}, "field 'text' must not be empty"),
        ({"predicted_label": "meh"}, "field 'predicted_label' must be one of ['negative', 'neutral', 'positive']"),
        ({"correct": "yes"}, "field 'correct' must be true or false"),
        ({"correct": 1}, "field 'correct' must be true or false"),
        ({"expected_label": None}, "field 'expected_label' must be one of"),
        ({"correct": True}, "field 'expected_label' contradicts 'correct'"),
        ({"expected_reason": "weather"}, "field 'expected_reason' must be one of ['delay', 'cancellation', "),
        ({"expected_reason": None}, "field 'expected_reason' must be one of"),
        ({"expected_label": "neutral", "expected_reason": "delay"}, "field 'expected_reason' is the complaint reason"),
        ({"expected_label": ..., "expected_reason": "delay"}, "field 'expected_reason' is the complaint reason"),
        ({"extra": 1}, "unknown fields ['extra']; allowed: "),
    ],
)
def test_feedback_messages_name_the_field_and_what_it_must_be(changes, message):
    with pytest.raises(BadRequest) as refused:
        parse_feedback(feedback(**changes), SETTINGS, LABELS)
    assert str(refused.value).startswith(message) and refused.value.status == 400


def test_a_reason_is_confirmed_or_corrected_for_a_tweet_whose_right_sentiment_is_negative():
    confirmed = parse_feedback(
        feedback(predicted_label="negative", correct=True, expected_label=..., expected_reason="booking"),
        SETTINGS,
        LABELS,
    )
    corrected = parse_feedback(feedback(expected_reason="lost_luggage"), SETTINGS, LABELS)
    assert (confirmed.expected_label, confirmed.expected_reason) == ("negative", "booking")
    assert (corrected.expected_label, corrected.expected_reason) == ("negative", "lost_luggage")


def test_a_right_prediction_needs_no_expected_label_and_the_id_is_normalised():
    received = parse_feedback(
        feedback(correct=True, expected_label=..., prediction_id="3F2B8F0E8D6C4C1E9D7A1B2C3D4E5F60"), SETTINGS, LABELS
    )
    assert received.expected_label == "positive" and received.prediction_id == "3f2b8f0e-8d6c-4c1e-9d7a-1b2c3d4e5f60"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "field 'text' is required: the tweet to classify"),
        ({"texts": []}, "field 'texts' must be a non-empty list of tweets"),
        ({"texts": "one"}, "field 'texts' must be a non-empty list of tweets"),
        ({"texts": ["a"] * 65}, "field 'texts' has 65 tweets; the limit is 64"),
        ({"text": 5}, "field 'text' must be a string"),
        ({"text": "a", "texts": ["b"]}, "send either 'text' (one tweet) or 'texts' (a batch), not both"),
    ],
)
def test_predict_messages(body, message):
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_predict(json.dumps(body).encode(), SETTINGS)


def verdicts() -> dict[str, dict]:
    """Every combination of predicted label, verdict, expected label (or none) and expected reason (or none),
    by name."""
    return {
        f"{predicted}-{'right' if correct else 'wrong'}-{'none' if expected is ... else expected}-"
        f"{'none' if reason is ... else reason}": {
            "predicted_label": predicted,
            "correct": correct,
            "expected_label": expected,
            "expected_reason": reason,
        }
        for predicted in LABELS
        for correct in (True, False)
        for expected in [*LABELS, ...]
        for reason in ("delay", ...)
    }


@pytest.mark.parametrize("verdict", verdicts().values(), ids=verdicts().keys())
def test_the_document_refuses_the_feedback_the_server_refuses(verdict):
    """The OpenAPI document allowed a verdict that contradicts its expected label (right with another label,
    wrong with the predicted one), which the server refuses: schemathesis sent them as valid data."""
    import jsonschema_rs  # what schemathesis validates with

    from tweet_sentiment.openapi import document

    components = document(SETTINGS, LABELS)["components"]
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/FeedbackRequest", "components": components}
    )
    body = feedback(**verdict)
    try:
        parse_feedback(body, SETTINGS, LABELS)
        served = "accepted"
    except BadRequest:
        served = "refused"
    assert ("accepted" if validator.is_valid(json.loads(body)) else "refused") == served


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "a", "context": {"followers": -1}}, "field 'context.followers' must be a whole number from 0 to"),
        ({"text": "a", "context": {"followers": 1.5}}, "field 'context.followers' must be a whole number"),
        ({"text": "a", "context": {"followers": "12"}}, "field 'context.followers' must be a whole number"),
        ({"text": "a", "context": {"likes": 10**13}}, "field 'context.likes' must be a whole number from 0 to"),
        ({"text": "a", "context": {"created_at": "yesterday"}}, "field 'context.created_at' must be an RFC 3339"),
        ({"text": "a", "context": {"created_at": 0}}, "field 'context.created_at' must be an RFC 3339"),  # schemathesis
        ({"text": "a", "context": {"created_at": "2026-13-45T09:30:00Z"}}, "field 'context.created_at' must be an"),
        ({"text": "a", "context": {"created_at": "2026-12-05T09:30:00"}}, "must be an RFC 3339 date-time with its"),
        ({"text": "a", "context": {"tweet_id": "a b"}}, "field 'context.tweet_id' must be 1 to 64 letters"),
        ({"text": "a", "context": {"handle": "@me"}}, "field 'context.handle' is unknown; a context has"),
        ({"text": "a", "context": [1]}, "field 'context' must be an object"),
    ],
)
def test_a_tweets_context_is_checked_field_by_field(body, message):
    with pytest.raises(BadRequest, match=re.escape(message)):
        parse_predict(json.dumps(body).encode(), SETTINGS)


def test_a_batch_mixes_plain_tweets_and_tweets_with_context_and_refuses_a_bad_one_alone():
    body = {
        "texts": [
            "@united thanks",
            {"text": "@united lost my bag", "context": {"followers": 10, "retweets": 2}},
            {"text": "@united late again", "context": {"retweets": -3}},
            {"text": "@united hi", "author": "me"},
            {"context": {"followers": 1}},
            {"text": ""},
        ]
    }
    request = parse_predict(json.dumps(body).encode(), SETTINGS)
    assert request.texts == ["@united thanks", "@united lost my bag", None, None, None, None]
    assert request.context_of(0) is None and request.context_of(1) is not None
    assert (request.context_of(1).followers, request.context_of(1).retweets) == (10, 2)
    assert request.errors == {
        2: "field 'texts[2].context.retweets' must be a whole number from 0 to 1,000,000,000,000",
        3: "field 'texts[3].author' is unknown: a tweet has 'text' and 'context'",
        4: "field 'texts[4].text' is required: the tweet to classify",
        5: "field 'texts[5].text' must not be empty",
    }


def test_reach_is_followers_and_every_account_that_engaged():
    from tweet_sentiment.reach import Context, reach

    assert reach(None) == 0 and reach(Context()) == 0
    assert reach(Context(followers=1200, retweets=30, likes=7, replies=2)) == 1239
