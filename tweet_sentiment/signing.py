"""Signed predictions: each prediction carries a `prediction_token` that feedback must send back.

The token is a JWT (HS256, PyJWT) whose claims bind the prediction id, the predicted label, the model version
and a hash of the tweet to the time it was issued. Feedback is accepted only for a prediction this service
made, on that tweet, with that label, within the token's lifetime: nothing is stored at predict time.

Rotation: the key in PREDICTION_SIGNING_KEY signs; the key in PREDICTION_SIGNING_KEY_PREVIOUS is still
accepted, so tokens issued before a rotation stay valid for their remaining lifetime (the grace period).
Each key is named in the token header by a key id derived from it, never by the key itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Sequence

import jwt

ALGORITHM = "HS256"
MIN_KEY_CHARS = 32  # 256 bits of a random key written as text


class TokenRejected(ValueError):
    """A token that does not prove its feedback; the message says what the client should do."""


@dataclasses.dataclass(frozen=True)
class SignedPrediction:
    """What a verified token proves."""

    prediction_id: str
    predicted_label: str
    model_version: str
    issued_at: int
    key_id: str


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_id(key: str) -> str:
    """A public name for a key: a short hash, so logs and stored rows can say which key signed."""
    return hashlib.sha256(b"prediction-signing-key:" + key.encode("utf-8")).hexdigest()[:12]


def generate_key() -> str:
    return secrets.token_urlsafe(48)


class PredictionSigner:
    def __init__(self, key: str, previous_keys: Sequence[str] = (), max_age_seconds: int = 30 * 86400):
        for candidate in (key, *previous_keys):
            if len(candidate) < MIN_KEY_CHARS:
                raise ValueError(f"a prediction signing key must have at least {MIN_KEY_CHARS} characters")
        self._signing_key = key
        self._keys = {key_id(candidate): candidate for candidate in (key, *previous_keys)}
        self.key_id = key_id(key)
        self.max_age_seconds = max_age_seconds

    def sign(
        self, prediction_id: str, predicted_label: str, model_version: str, text: str, now: float | None = None
    ) -> str:
        issued_at = int(time.time() if now is None else now)
        claims = {
            "pid": prediction_id,
            "label": predicted_label,
            "mv": model_version,
            "th": text_sha256(text),
            "iat": issued_at,
            "exp": issued_at + self.max_age_seconds,
        }
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def verify(self, token: str, prediction_id: str, predicted_label: str, text: str) -> SignedPrediction:
        """What the token proves, or TokenRejected when it is forged, expired or about another prediction."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("'prediction_token' is not a token issued by /api/predict") from None
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise TokenRejected(
                "'prediction_token' was signed by a key this service no longer accepts: "
                "predict again and send the new token"
            )
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "iat"]})
        except jwt.ExpiredSignatureError:
            raise TokenRejected(
                "'prediction_token' has expired: feedback is accepted for "
                f"{self.max_age_seconds // 86400} days after a prediction"
            ) from None
        except jwt.PyJWTError:
            raise TokenRejected("'prediction_token' is not a valid token issued by /api/predict") from None
        issued_at = claims.get("iat")
        # The lifetime in force now applies too, so shortening the setting also shortens issued tokens.
        if not isinstance(issued_at, int) or time.time() - issued_at > self.max_age_seconds:
            raise TokenRejected(
                "'prediction_token' has expired: feedback is accepted for "
                f"{self.max_age_seconds // 86400} days after a prediction"
            )
        if claims.get("pid") != prediction_id:
            raise TokenRejected("'prediction_token' belongs to another prediction_id")
        if claims.get("label") != predicted_label:
            raise TokenRejected("'predicted_label' is not the label this prediction gave")
        if claims.get("th") != text_sha256(text):
            raise TokenRejected("'text' is not the tweet this prediction was made for")
        return SignedPrediction(
            prediction_id, predicted_label, str(claims.get("mv", "")), issued_at, str(header["kid"])
        )
