"""What the HTTP functions need beyond the model: the per-worker model, request validation, the signer."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .labels import LABELS
from .manifest import ModelError
from .model import SentimentModel
from .reach import Context
from .schema import Limits, Schemas, context_problem, message_of, tweet_problem
from .settings import Settings
from .signing import PredictionSigner, generate_key
from .tweets import BadRequest as BadRequest  # the edge answers it 4xx; re-exported for function_app
from .tweets import checked_tweet

logger = logging.getLogger(__name__)

DEFAULT_LABELS = LABELS  # what feedback and the documentation accept while the model is down


class ModelHolder:
    """Loads the model once per worker. A model that fails to load, for any reason, is reported and retried at
    most every `retry_seconds`, so a fixed model file is picked up without a restart and a broken one cannot
    cause a crash loop nor a full reload on every request."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._model: SentimentModel | None = None
        self._error: ModelError | None = None
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
                        self._error, self._failed_at = error, time.monotonic()
                    except Exception as error:  # a damaged asset can fail inside any library: same path
                        self._error = ModelError(
                            f"model {self.settings.model_path} cannot be loaded "
                            f"({type(error).__name__}: {error}): re-export the model"
                        )
                        self._failed_at = time.monotonic()
                if self._model is None:
                    raise self._error or ModelError("model not loaded")
        return self._model


def check_content_length(headers: Mapping[str, str], settings: Settings) -> None:
    """Refuse a declared oversized body before anything reads it."""
    declared = headers.get("content-length") or headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
        raise BadRequest(f"request body is {declared} bytes; the limit is {settings.max_request_bytes}", 413)


def check_json_content_type(headers: Mapping[str, str]) -> None:
    """JSON bodies only: a cross-site HTML form (text/plain, form-encoded, multipart) cannot send one, so a
    signed-in person's browser cannot be made to post to the staff routes from another site."""
    declared = headers.get("content-type") or headers.get("Content-Type") or ""
    media_type, _, parameters = declared.partition(";")
    charset = parameters.strip().lower().removeprefix("charset=").strip('"')
    if media_type.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise BadRequest("send the body as JSON with the header Content-Type: application/json", 415)


def parse_json_object(body: bytes, settings: Settings, allowed: Iterable[str]) -> dict[str, Any]:
    if len(body) > settings.max_request_bytes:
        raise BadRequest(f"request body is {len(body)} bytes; the limit is {settings.max_request_bytes}", 413)
    try:
        # Decoded as UTF-8 first: json.loads(bytes) would also take UTF-16 and UTF-32.
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep, integers of 4,301+ digits
        raise BadRequest("request body must be a JSON object") from None
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
    return payload


def schemas(settings: Settings, labels: Sequence[str] = DEFAULT_LABELS) -> Schemas:
    """The request and answer models for the running limits and the served model's labels."""
    limits = Limits(settings.max_tweet_chars, settings.max_batch, settings.max_batch_chars)
    return Schemas.build(limits, tuple(labels))


def _validated(model: type[BaseModel], payload: dict[str, Any], labels: Sequence[str]) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise BadRequest(message_of(error, tuple(labels))) from None


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """The tweets of a request: `texts[i]` is None where tweet i was refused, with its reason in `errors[i]`;
    `contexts[i]` is what the client sent of its reach (None when nothing)."""

    texts: list[str | None]
    errors: dict[int, str]
    batch: bool
    contexts: list[Context | None] = dataclasses.field(default_factory=list)

    def context_of(self, index: int) -> Context | None:
        return self.contexts[index] if index < len(self.contexts) else None

    @property
    def valid(self) -> list[str]:
        return [text for text in self.texts if text is not None]


def parse_predict(body: bytes, settings: Settings) -> PredictRequest:
    """One `text`, or a batch of `texts` where each bad tweet is refused alone (malformed bodies fail whole)."""
    models = schemas(settings)
    fields = {*models.tweet_request.model_fields, *models.batch_request.model_fields}
    payload = parse_json_object(body, settings, fields)
    if "text" in payload and "texts" in payload:
        raise BadRequest("send either 'text' (one tweet) or 'texts' (a batch), not both")
    if "texts" not in payload:
        single = _validated(models.tweet_request, payload, models.labels)
        return PredictRequest([single.text], {}, batch=False, contexts=[single.context])
    items = _validated(models.batch_request, payload, models.labels).texts
    texts: list[str | None] = []
    contexts: list[Context | None] = []
    errors: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            text, context = _batch_tweet(item, index, models, settings)
        except BadRequest as error:
            text, context = None, None
            errors[index] = str(error)
        texts.append(text)
        contexts.append(context)
    characters = sum(len(text) for text in texts if text is not None)
    if characters > settings.max_batch_chars:
        raise BadRequest(
            f"the batch has {characters} characters; the limit is {settings.max_batch_chars}: "
            "split it into smaller batches",
            413,
        )
    return PredictRequest(texts, errors, batch=True, contexts=contexts)


def _batch_tweet(item: Any, index: int, models: Schemas, settings: Settings) -> tuple[str, Context | None]:
    """A batch's tweet: its text alone, or an object with its text and context; BadRequest names the field."""
    field = f"texts[{index}]"
    if not isinstance(item, dict):
        return checked_tweet(item, f"'{field}'", settings), None
    try:
        tweet: Any = models.tweet_item.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else ""
        if where == "context":
            raise BadRequest(context_problem(first, f"{field}.context")) from None
        if where == "text" and first["type"] != "missing":
            raise BadRequest(f"field '{field}.text' {tweet_problem(first)}") from None
        if first["type"] == "extra_forbidden":
            raise BadRequest(f"field '{field}.{where}' is unknown: a tweet has 'text' and 'context'") from None
        raise BadRequest(f"field '{field}.text' is required: the tweet to classify") from None
    return tweet.text, tweet.context


@dataclasses.dataclass(frozen=True)
class Feedback:
    prediction_id: str
    text: str
    predicted_label: str
    correct: bool
    expected_label: str | None
    prediction_token: str
    expected_reason: str | None = None  # a negative tweet's complaint reason, as staff corrected or confirmed it


def parse_feedback(body: bytes, settings: Settings, labels: Sequence[str]) -> Feedback:
    model = schemas(settings, labels).feedback_request
    received = _validated(model, parse_json_object(body, settings, model.model_fields), labels)
    expected = received.expected_label
    return Feedback(
        str(received.prediction_id),
        received.text,
        received.predicted_label,
        received.correct,
        expected if expected is not None else (received.predicted_label if received.correct else None),
        received.prediction_token,
        received.expected_reason,
    )


def prediction_signer(settings: Settings) -> PredictionSigner:
    """The signer of prediction tokens. Without PREDICTION_SIGNING_KEY (a bare local run) a key is generated
    for this process only: tokens then stop verifying on restart and on other workers, hence the warning."""
    key = settings.signing_key
    if key is None:
        logger.warning(
            "PREDICTION_SIGNING_KEY is not set: prediction tokens are signed with a key of this process "
            "only; set it (a Key Vault reference in Azure) so feedback verifies across workers"
        )
        key = generate_key()
    previous = [settings.previous_signing_key] if settings.previous_signing_key else []
    return PredictionSigner(key, previous, max_age_seconds=settings.token_max_age_days * 86400)
