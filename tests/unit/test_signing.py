"""Prediction tokens: what a token proves, and every way a forged, altered or stale one is refused."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from tweet_sentiment.signing import PredictionSigner, TokenRejected, generate_key, key_id

TWEET = "@united lost my bag again"


@pytest.fixture()
def signer():
    return PredictionSigner(generate_key(), max_age_seconds=30 * 86400)


def test_a_genuine_token_proves_its_prediction(signer):
    prediction_id = str(uuid.uuid4())
    token = signer.sign(prediction_id, "negative", "8", TWEET)
    proof = signer.verify(token, prediction_id, "negative", TWEET)
    assert (proof.prediction_id, proof.predicted_label, proof.model_version, proof.key_id) == (
        prediction_id,
        "negative",
        "8",
        signer.key_id,
    )
    assert abs(proof.issued_at - time.time()) < 5
    assert TWEET not in token  # the token carries a hash of the tweet, not the tweet


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("prediction_id", str(uuid.uuid4()), "belongs to another prediction_id"),
        ("predicted_label", "positive", "not the label this prediction gave"),
        ("text", TWEET + "!", "not the tweet this prediction was made for"),
    ],
)
def test_a_token_does_not_prove_another_feedback(signer, field, value, message):
    claimed = {"prediction_id": str(uuid.uuid4()), "predicted_label": "negative", "text": TWEET}
    token = signer.sign(claimed["prediction_id"], claimed["predicted_label"], "8", claimed["text"])
    with pytest.raises(TokenRejected, match=message):
        signer.verify(token, **{**claimed, field: value})


def test_forged_and_tampered_tokens_are_refused(signer):
    prediction_id = str(uuid.uuid4())
    other = PredictionSigner(generate_key())
    forged = other.sign(prediction_id, "negative", "8", TWEET)
    with pytest.raises(TokenRejected, match="no longer accepts"):  # unknown key id
        signer.verify(forged, prediction_id, "negative", TWEET)
    # A token claiming this service's key id, signed with another key.
    impostor = jwt.encode(
        jwt.decode(forged, options={"verify_signature": False}),
        generate_key(),
        algorithm="HS256",
        headers={"kid": signer.key_id},
    )
    with pytest.raises(TokenRejected, match="not a valid token"):
        signer.verify(impostor, prediction_id, "negative", TWEET)
    # alg "none" and garbage.
    unsigned = jwt.encode({"pid": prediction_id}, None, algorithm="none", headers={"kid": signer.key_id})
    for token in (unsigned, "ok", "", "a.b.c", signer.sign(prediction_id, "negative", "8", TWEET)[:-4] + "AAAA"):
        with pytest.raises(TokenRejected):
            signer.verify(token, prediction_id, "negative", TWEET)


def test_expired_tokens_are_refused(signer):
    prediction_id = str(uuid.uuid4())
    old = signer.sign(prediction_id, "negative", "8", TWEET, now=time.time() - 31 * 86400)
    with pytest.raises(TokenRejected, match="has expired: feedback is accepted for 30 days"):
        signer.verify(old, prediction_id, "negative", TWEET)
    # Shortening the lifetime setting also shortens tokens already issued.
    recent = signer.sign(prediction_id, "negative", "8", TWEET, now=time.time() - 2 * 86400)
    shorter = PredictionSigner(signer._signing_key, max_age_seconds=86400)
    with pytest.raises(TokenRejected, match="has expired"):
        shorter.verify(recent, prediction_id, "negative", TWEET)


def test_rotation_keeps_the_previous_key_for_its_tokens():
    old_key, new_key = generate_key(), generate_key()
    prediction_id = str(uuid.uuid4())
    before = PredictionSigner(old_key).sign(prediction_id, "neutral", "8", TWEET)
    rotated = PredictionSigner(new_key, previous_keys=[old_key])
    assert rotated.verify(before, prediction_id, "neutral", TWEET).key_id == key_id(old_key)
    after = rotated.sign(prediction_id, "neutral", "8", TWEET)
    assert jwt.get_unverified_header(after)["kid"] == key_id(new_key)
    with pytest.raises(TokenRejected, match="no longer accepts"):  # once the previous key is removed
        PredictionSigner(new_key).verify(before, prediction_id, "neutral", TWEET)


def test_weak_keys_are_refused():
    with pytest.raises(ValueError, match="at least 32 characters"):
        PredictionSigner("secret")
    with pytest.raises(ValueError, match="at least 32 characters"):
        PredictionSigner(generate_key(), previous_keys=["short"])
