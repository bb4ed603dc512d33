"""The HTTP functions called as the Functions host calls them, with `func.HttpRequest`: no storage needed."""

from __future__ import annotations

import json
import uuid

import pytest

import function_app
from tests.conftest import (
    NEGATIVE_TWEET,
    NEUTRAL_TWEET,
    POSITIVE_TWEET,
    body_of,
    copy_shipped_model,
    feedback_payload,
    free_port,
    get,
    post,
)
from tweet_sentiment.feedback import FeedbackStore, azurite_connection_string
from tweet_sentiment.labels import REASONS
from tweet_sentiment.settings import Settings


@pytest.mark.parametrize(
    "tweet, label", [(NEGATIVE_TWEET, "negative"), (POSITIVE_TWEET, "positive"), (NEUTRAL_TWEET, "neutral")]
)
def test_predict(http_functions, tweet, label):
    response = post(http_functions["predict"], {"text": tweet})
    assert response.status_code == 200
    body = body_of(response)
    assert body["label"] == label
    assert set(body["scores"]) == {"negative", "neutral", "positive"}
    assert max(body["scores"], key=body["scores"].get) == label
    assert sum(body["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["model"] == {"name": "tweet-sentiment", "version": function_app.model_holder.get().manifest.version}
    assert body["labels"] == ["negative", "neutral", "positive"]
    uuid.UUID(body["prediction_id"])
    # A negative answer says what the complaint is about, the others carry "reason": null.
    if label != "negative":
        assert "reason" in body and body["reason"] is None
        return
    reason = body["reason"]
    assert set(reason["scores"]) == set(REASONS) and sum(reason["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert reason["label"] == "lost_luggage" == max(reason["scores"], key=reason["scores"].get)  # "lost my bag"
    assert reason["score"] == reason["scores"]["lost_luggage"] and reason["unsure"] is False


def test_every_answer_says_how_sure_it_is_by_the_line_of_its_model(http_functions):
    calibration = function_app.model_holder.get().manifest.calibration
    body = body_of(post(http_functions["predict"], {"texts": [NEGATIVE_TWEET, POSITIVE_TWEET, "@united ok then"]}))
    for answer in body["predictions"]:
        unsure = max(answer["scores"].values()) < calibration["unsure_below"]
        assert answer["unsure"] == unsure and any("unsure sentiment" in w for w in answer.get("warnings", [])) == unsure
        if answer["reason"] is not None:
            reason_unsure = answer["reason"]["score"] < calibration["reason_unsure_below"]
            assert answer["reason"]["unsure"] == reason_unsure


def test_batch_prediction_keeps_the_order(http_functions):
    tweets = [NEGATIVE_TWEET, POSITIVE_TWEET, NEUTRAL_TWEET, NEGATIVE_TWEET]
    response = post(http_functions["predict"], {"texts": tweets})
    assert response.status_code == 200
    body = body_of(response)
    assert [result["label"] for result in body["predictions"]] == ["negative", "positive", "neutral", "negative"]
    assert body["labels"] == ["negative", "neutral", "positive"]
    ids = [result["prediction_id"] for result in body["predictions"]]
    assert len(set(ids)) == 4
    single = body_of(post(http_functions["predict"], {"text": POSITIVE_TWEET}))
    assert body["predictions"][1]["scores"] == single["scores"]  # the same answer alone or in a batch
    alone = body_of(post(http_functions["predict"], {"text": NEGATIVE_TWEET}))
    assert body["predictions"][0]["reason"] == body["predictions"][3]["reason"] == alone["reason"] is not None
    assert all(result["model"] == body["model"] for result in body["predictions"])


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "must be a JSON object"),
        (b"\xff\xfe", "must be a JSON object"),
        (b'["a list"]', "must be a JSON object"),
        (b"{}", "'text' is required"),
        (b'{"text": 42}', "must be a string"),
        (b'{"text": null}', "'text' is required"),
        (b'{"text": "   "}', "must not be empty"),
        (json.dumps({"text": "x" * 1001}).encode(), "1001 characters; the limit is 1000"),
        (b'{"text": "ok", "lang": "en"}', "unknown fields ['lang']"),
        (b'{"text": "ok", "texts": ["ok"]}', "either 'text'"),
        (b'{"texts": []}', "non-empty list"),
        (b'{"texts": "one"}', "non-empty list"),
        (json.dumps({"texts": ["ok"] * 65}).encode(), "65 tweets; the limit is 64"),
        (b'{"text": "\\ud800 lone surrogate"}', "not valid Unicode text"),
        (b"[" * 5000 + b"]" * 5000, "must be a JSON object"),
        (b'{"text": ' + b"9" * 5000 + b"}", "must be a JSON object"),
    ],
)
def test_predict_rejects_bad_input(http_functions, raw, message):
    response = post(http_functions["predict"], None, raw)
    assert response.status_code == 400
    assert message in body_of(response)["error"]


def test_predict_rejects_oversized_body(http_functions):
    response = post(http_functions["predict"], None, json.dumps({"text": "a" * 70_000}).encode())
    assert response.status_code == 413
    assert "the limit is 65536" in body_of(response)["error"]


def test_storage_outage_answers_503_and_keeps_nothing_it_claims(http_functions, monkeypatch):
    closed = azurite_connection_string(port=free_port())
    monkeypatch.setattr(function_app, "feedback_store", FeedbackStore(closed, "feedback", timeout_seconds=1))
    response = post(http_functions["feedback"], feedback_payload())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "may not be stored: retry in 30 seconds with the same prediction_id" in body_of(response)["error"]
    # Predictions do not depend on storage.
    assert post(http_functions["predict"], {"text": NEGATIVE_TWEET}).status_code == 200


def test_unconfigured_storage_tells_operators_what_to_set(http_functions, monkeypatch, caplog):
    monkeypatch.setattr(function_app, "feedback_store", FeedbackStore(None, "feedback"))
    response = post(http_functions["feedback"], feedback_payload())
    assert response.status_code == 503
    assert "FEEDBACK_STORAGE_CONNECTION_STRING" not in body_of(response)["error"]  # settings are not for callers
    assert "set FEEDBACK_TABLE_ENDPOINT" in caplog.text


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"prediction_id": "42"}, "must be the UUID"),
        ({"prediction_id": ...}, "'prediction_id' is required"),
        ({"text": ""}, "must not be empty"),
        ({"predicted_label": "angry"}, "'predicted_label' must be one of"),
        ({"correct": "false"}, "'correct' must be true or false"),
        ({"correct": 0}, "'correct' must be true or false"),
        ({"expected_label": "furious"}, "'expected_label' must be one of"),
        ({"expected_label": None}, "'expected_label' must be one of"),
        ({"expected_label": "positive"}, "contradicts 'correct'"),
        ({"correct": True}, "contradicts 'correct'"),
        ({"user": "me"}, "unknown fields ['user']"),
        ({"prediction_token": ...}, "'prediction_token' is required"),
        ({"prediction_token": 42}, "'prediction_token' is required"),
        ({"text": "\ud800 bad"}, "not valid Unicode text"),
    ],
)
def test_feedback_rejects_bad_input(http_functions, changes, message):
    response = post(http_functions["feedback"], feedback_payload(**changes))
    assert response.status_code == 400
    assert message in body_of(response)["error"]


def test_health(http_functions):
    response = get(http_functions["health"])
    assert response.status_code == 200
    body = body_of(response)
    assert body["status"] == "ok"
    assert body["model"]["labels"] == ["negative", "neutral", "positive"]
    assert body["model"]["name"] == "tweet-sentiment" and body["model"]["load_seconds"] >= 0


def test_missing_model_is_reported_not_crashed(http_functions, broken_model, caplog):
    health = get(http_functions["health"])
    assert health.status_code == 503
    assert "model unavailable" in body_of(health)["error"]
    assert "/" not in body_of(health)["error"]  # no path for anonymous callers: the log has them
    assert health.headers["Retry-After"] == "30"  # every 503 says when to come back
    assert "not found: export a model" in caplog.text
    predicted = post(http_functions["predict"], {"text": NEGATIVE_TWEET})
    assert predicted.status_code == 503
    assert predicted.headers["Retry-After"] == "30"
    assert "model unavailable" in body_of(predicted)["error"]
    # Feedback does not need the model (tests/service/test_feedback_storage.py stores it); the documentation
    # is still served.
    assert get(http_functions["openapi_document"]).status_code == 200


def test_a_repaired_model_is_picked_up_without_restart(http_functions, broken_model, tmp_path):
    assert post(http_functions["predict"], {"text": NEGATIVE_TWEET}).status_code == 503
    copy_shipped_model(tmp_path)
    broken_model._failed_at -= broken_model.settings.model_retry_seconds  # the retry delay has passed
    assert post(http_functions["predict"], {"text": NEGATIVE_TWEET}).status_code == 200


def test_invalid_app_setting_names_itself(monkeypatch):
    monkeypatch.setenv("MAX_TWEET_CHARS", "lots")
    with pytest.raises(ValueError, match="MAX_TWEET_CHARS='lots' must be a positive integer"):
        Settings.from_environment()


# What the champion's text processing leaves nothing of (it reads emoji, punctuation and any script its
# tokenizer knows): handles and links become placeholders only.
@pytest.mark.parametrize("tweet", ["@united", "https://t.co/x1Yz", "@united @JetBlue https://t.co/x1Yz"])
def test_a_tweet_with_no_readable_words_is_answered_with_a_warning(http_functions, tweet):
    body = body_of(post(http_functions["predict"], {"texts": [tweet, NEGATIVE_TWEET]}))
    unreadable, readable = body["predictions"]
    assert "no readable words" in unreadable["warnings"][0]
    assert unreadable["label"] in body["labels"] and "warnings" not in readable


def test_a_tweet_sent_with_its_context_is_answered_with_its_reach(http_functions):
    context = {"followers": 1200, "retweets": 30, "likes": 7, "created_at": "2026-12-05T08:00:00Z"}
    single = body_of(post(http_functions["predict"], {"text": NEGATIVE_TWEET, "context": context}))
    assert single["reach"] == 1237 and single["label"] == "negative"
    batch = body_of(
        post(
            http_functions["predict"],
            {"texts": [NEGATIVE_TWEET, {"text": NEGATIVE_TWEET, "context": context}, {"text": "x", "context": 5}]},
        )
    )
    plain, loud, refused = batch["predictions"]
    assert "reach" not in plain and loud["reach"] == 1237  # left out when no context came with the tweet
    assert (plain["label"], plain["scores"]) == (loud["label"], loud["scores"])  # the context never moves the answer
    assert refused == {"index": 2, "error": "field 'texts[2].context' must be an object: followers, retweets, "
                       "likes, replies, created_at, tweet_id"}  # fmt: skip
