"""What the HTTP functions need beyond the model: settings, the per-worker model, request validation."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .manifest import ModelError
from .model import SentimentModel

APP_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LABELS = ("negative", "neutral", "positive")
FEEDBACK_FIELDS = {"prediction_id", "text", "predicted_label", "correct", "expected_label"}
PREDICT_FIELDS = {"text", "texts"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """App settings (environment variables), with the documented defaults."""

    model_path: Path = APP_ROOT / "models" / "champion.json"
    onnx_threads: int = 1
    max_tweet_chars: int = 1000
    max_request_bytes: int = 64 * 1024
    max_batch: int = 64
    model_retry_seconds: float = 30.0
    feedback_retry_seconds: int = 30
    feedback_table: str = "feedback"
    feedback_connection_string: str | None = None
    telemetry_includes_text: bool = False  # tweets are personal data: off unless an operator allows it

    @classmethod
    def from_environment(cls) -> "Settings":
        environ = os.environ
        model_path = Path(environ.get("SENTIMENT_MODEL_PATH", cls.model_path))
        return cls(
            model_path=model_path if model_path.is_absolute() else APP_ROOT / model_path,
            onnx_threads=_positive_int(environ, "ONNX_INTRA_OP_THREADS", cls.onnx_threads),
            max_tweet_chars=_positive_int(environ, "MAX_TWEET_CHARS", cls.max_tweet_chars),
            max_request_bytes=_positive_int(environ, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            max_batch=_positive_int(environ, "MAX_BATCH_TWEETS", cls.max_batch),
            feedback_table=environ.get("FEEDBACK_TABLE", cls.feedback_table),
            # The Function App's own storage account unless a dedicated one is named.
            feedback_connection_string=(environ.get("FEEDBACK_STORAGE_CONNECTION_STRING")
                                        or environ.get("AzureWebJobsStorage") or None),
            telemetry_includes_text=environ.get("TELEMETRY_INCLUDE_TEXT", "false").lower() == "true",
        )


def _positive_int(environ: os._Environ, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"app setting {name}={raw!r} must be a positive integer (default {default})")
    return int(raw)


class ModelHolder:
    """Loads the model once per worker. A model that fails to load is reported, and retried at most every
    `retry_seconds`, so a fixed model file is picked up without a restart and a broken one cannot cause a
    crash loop."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._model: SentimentModel | None = None
        self._error: str | None = None
        self._failed_at = float("-inf")

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self) -> SentimentModel:
        """The loaded model, or ModelError with the reason and what to do."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                if time.monotonic() - self._failed_at >= self.settings.model_retry_seconds:
                    try:
                        self._model = SentimentModel.load(self.settings.model_path, self.settings.onnx_threads)
                        self._error = None
                    except ModelError as error:
                        self._error, self._failed_at = str(error), time.monotonic()
                if self._model is None:
                    raise ModelError(self._error or "model not loaded")
        return self._model


class BadRequest(ValueError):
    """A request the client must correct: answered 4xx with `{"error": message}`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_json_object(body: bytes, settings: Settings, allowed: set[str]) -> dict[str, Any]:
    if len(body) > settings.max_request_bytes:
        raise BadRequest(f"request body is {len(body)} bytes; the limit is {settings.max_request_bytes}", 413)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("request body must be a JSON object") from None
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
    return payload


def _tweet(text: Any, field: str, settings: Settings) -> str:
    if not isinstance(text, str):
        raise BadRequest(f"field {field} must be a string")
    if not text.strip():
        raise BadRequest(f"field {field} must not be empty")
    if len(text) > settings.max_tweet_chars:
        raise BadRequest(f"field {field} has {len(text)} characters; the limit is {settings.max_tweet_chars}")
    return text


def tweet_text(payload: dict[str, Any], settings: Settings) -> str:
    if payload.get("text") is None:
        raise BadRequest("field 'text' is required: the tweet to classify")
    return _tweet(payload["text"], "'text'", settings)


def parse_predict(body: bytes, settings: Settings) -> tuple[list[str], bool]:
    """The tweets to classify, and whether the client sent a batch (`texts`) rather than one `text`."""
    payload = parse_json_object(body, settings, PREDICT_FIELDS)
    if "text" in payload and "texts" in payload:
        raise BadRequest("send either 'text' (one tweet) or 'texts' (a batch), not both")
    if "texts" not in payload:
        return [tweet_text(payload, settings)], False
    texts = payload["texts"]
    if not isinstance(texts, list) or not texts:
        raise BadRequest("field 'texts' must be a non-empty list of tweets")
    if len(texts) > settings.max_batch:
        raise BadRequest(f"field 'texts' has {len(texts)} tweets; the limit is {settings.max_batch}")
    return [_tweet(text, f"'texts[{index}]'", settings) for index, text in enumerate(texts)], True


@dataclasses.dataclass(frozen=True)
class Feedback:
    prediction_id: str
    text: str
    predicted_label: str
    correct: bool
    expected_label: str | None


def parse_feedback(body: bytes, settings: Settings, labels: list[str] | tuple[str, ...]) -> Feedback:
    payload = parse_json_object(body, settings, FEEDBACK_FIELDS)
    prediction_id = payload.get("prediction_id")
    if not isinstance(prediction_id, str):
        raise BadRequest("field 'prediction_id' is required: the id that /api/predict returned")
    try:
        prediction_id = str(uuid.UUID(prediction_id))
    except ValueError:
        raise BadRequest("field 'prediction_id' must be the UUID that /api/predict returned") from None
    text = tweet_text(payload, settings)
    predicted = payload.get("predicted_label")
    if predicted not in labels:
        raise BadRequest(f"field 'predicted_label' must be one of {list(labels)}")
    correct = payload.get("correct")
    if type(correct) is not bool:
        raise BadRequest("field 'correct' must be true or false")
    expected = payload.get("expected_label")
    if "expected_label" in payload and expected not in labels:  # null included: leave the field out instead
        raise BadRequest(f"field 'expected_label' must be one of {list(labels)}")
    if expected is not None and (expected == predicted) != correct:
        raise BadRequest("field 'expected_label' contradicts 'correct': give the right label when the prediction "
                         "was wrong, and leave it out (or equal to the prediction) when it was right")
    return Feedback(prediction_id, text, predicted, correct, expected if expected is not None else
                    (predicted if correct else None))
