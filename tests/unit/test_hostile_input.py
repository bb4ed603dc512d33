"""Hostile input to the functions in process: feedback that no prediction proves, bodies the parser cannot
take, batches with bad tweets, and a property-based fuzz of both endpoints. No storage is needed: nothing here
may reach it."""

from __future__ import annotations

import json
import time
import uuid

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from tests.conftest import (
    NEGATIVE_TWEET,
    POSITIVE_TWEET,
    body_of,
    feedback_on,
    feedback_payload,
    get,
    post,
    predict_in_process,
)
from tweet_sentiment.signing import PredictionSigner, generate_key


def test_forged_and_altered_feedback_is_refused(http_functions):
    answer = predict_in_process(http_functions, NEGATIVE_TWEET)
    genuine = feedback_on(answer, NEGATIVE_TWEET, correct=True)
    other_label = next(label for label in answer["labels"] if label != answer["label"])
    forger = PredictionSigner(generate_key())
    attempts = {
        "never issued": {**genuine, "prediction_id": str(uuid.uuid4())},
        "label never given": {
            **genuine,
            "predicted_label": other_label,
            "correct": False,
            "expected_label": answer["label"],
        },
        "another tweet": {**genuine, "text": "this airline killed my dog and laughed"},
        "own key": {
            **genuine,
            "prediction_token": forger.sign(genuine["prediction_id"], answer["label"], "8", NEGATIVE_TWEET),
        },
        "garbage": {**genuine, "prediction_token": "ok"},
    }
    for name, payload in attempts.items():
        response = post(http_functions["feedback"], payload)
        assert response.status_code == 403, name
        assert "prediction_token" in body_of(response)["error"] or "prediction" in body_of(response)["error"]


def test_expired_token_is_refused(http_functions):
    prediction_id = str(uuid.uuid4())
    token = function_app.signer.sign(prediction_id, "negative", "8", NEGATIVE_TWEET, now=time.time() - 31 * 86400)
    response = post(
        http_functions["feedback"],
        feedback_payload(
            prediction_id=prediction_id,
            predicted_label="negative",
            correct=True,
            expected_label=...,
            prediction_token=token,
        ),
    )
    assert response.status_code == 403 and "expired" in body_of(response)["error"]


# --- Bodies and batches ----------------------------------------------------------------------------------------


def test_a_batch_with_bad_tweets_classifies_the_others(http_functions):
    response = post(http_functions["predict"], {"texts": [NEGATIVE_TWEET, "", 3, "\ud800", POSITIVE_TWEET]})
    assert response.status_code == 200
    results = body_of(response)["predictions"]
    assert [result.get("label") for result in results] == ["negative", None, None, None, "positive"]
    assert [result["index"] for result in results[1:4]] == [1, 2, 3]
    assert "must not be empty" in results[1]["error"] and "must be a string" in results[2]["error"]
    assert "not valid Unicode" in results[3]["error"]


def test_a_batch_over_the_character_budget_is_refused_whole(http_functions):
    limit = function_app.settings.max_batch_chars
    tweets = ["x" * 1000] * (limit // 1000 + 1)
    response = post(http_functions["predict"], {"texts": tweets})
    assert response.status_code == 413
    assert f"the limit is {limit}" in body_of(response)["error"]


def test_declared_oversized_body_is_refused_before_reading(http_functions):
    request = func.HttpRequest(
        method="POST",
        url="/api/predict",
        body=b'{"text": "ok"}',
        headers={"Content-Length": "500000000", "Content-Type": "application/json"},
    )
    response = http_functions["predict"](request)
    assert response.status_code == 413 and "500000000 bytes" in body_of(response)["error"]


@pytest.mark.parametrize(
    "name, extra", [("predict", None), ("feedback", None), ("health", None), ("openapi_document", None), ("ui", None)]
)
def test_every_answer_carries_security_headers(http_functions, name, extra):
    function = http_functions[name]
    response = (
        post(function, {"text": NEGATIVE_TWEET})
        if name == "predict"
        else (post(function, {}) if name == "feedback" else get(function))
    )
    headers = {key.lower(): value for key, value in response.headers.items()}
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    if name == "ui":
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert "script-src 'sha256-" in headers["content-security-policy"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


FIELDS = ["text", "texts", "prediction_id", "prediction_token", "predicted_label", "correct", "expected_label"]


BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, endpoint=st.sampled_from(["predict", "feedback"]))
def test_fuzzed_bodies_never_answer_500(http_functions, body, endpoint):
    response = post(http_functions[endpoint], None, body)
    assert response.status_code in {200, 202, 400, 403, 409, 413}
    payload = body_of(response)
    if response.status_code >= 400:
        assert isinstance(payload["error"], str) and "Traceback" not in payload["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"text": ' + b"1" * 60_000 + b"}",
        b'{"text": "' + b"\\ud800" * 10 + b'"}',
        b'{"text": NaN}',
        b"\x00" * 100,
    ],
)
def test_bodies_the_parser_cannot_take_are_400(http_functions, body):
    for endpoint in ("predict", "feedback"):
        response = post(http_functions[endpoint], None, body)
        assert response.status_code in {400, 413}, endpoint


# --- Damaged model files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/json; charset=utf-16", "text/json"],
)  # fmt: skip
@pytest.mark.parametrize("route", ["predict", "feedback", "staff_predict", "staff_feedback"])
def test_only_json_bodies_are_read_which_a_cross_site_form_cannot_send(http_functions, route, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = post(http_functions[route], {"text": "@united late again"}, headers=headers)
    assert response.status_code == 415
    assert body_of(response) == {"error": "send the body as JSON with the header Content-Type: application/json"}


def test_json_with_a_charset_is_json(http_functions):
    for declared in ("application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"'):
        response = post(http_functions["predict"], {"text": "@united late again"}, headers={"Content-Type": declared})
        assert response.status_code == 200, declared


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_that_is_not_utf8_is_refused_whatever_json_could_guess(http_functions, encoding):
    raw = json.dumps({"text": "@united late again"}).encode(encoding)
    response = post(http_functions["predict"], None, raw=raw)
    assert response.status_code == 400 and body_of(response) == {"error": "request body must be a JSON object"}
