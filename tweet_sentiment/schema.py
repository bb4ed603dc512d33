"""The HTTP edge's bodies, defined once as pydantic models: the functions validate requests and build answers
with them, and the OpenAPI document (tweet_sentiment/openapi.py) is generated from them.

The limits (tweet length, batch size) come from the running settings and the labels from the served model,
so the models are built for those values (`Schemas.build`, cached). A validation error becomes the API's
one-line message naming the field (`field 'text' must not be empty`): `message_of`.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import ErrorDetails

from .labels import NEGATIVE, REASONS
from .reach import COUNTS, MAX_COUNT, Context

LANGUAGE = r"^([a-z]{2}|und)$"


def _never_null(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema.update(next(option for option in schema.pop("anyOf") if option.get("type") != "null"))


def optional(description: str | None = None) -> Any:
    """An answer field that may be left out: left out of the answer when None, so it is never null."""
    return Field(default=None, description=description, json_schema_extra=_never_null, exclude_if=_is_none)


def _is_none(value: Any) -> bool:
    return value is None


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(Answer):
    name: str
    version: str


class FeedbackAccepted(Answer):
    status: Literal["accepted"] = "accepted"
    feedback_id: uuid.UUID


class HealthModel(Answer):
    name: str
    version: str
    family: str | None = optional()
    labels: list[str]
    created_at: str | None = optional()
    load_seconds: float


class Health(Answer):
    status: Literal["ok", "unavailable"]
    error: str | None = optional("why the model is unavailable")
    model: HealthModel | None = optional()


class Error(Answer):
    error: str = Field(description="what went wrong, and what to correct or when to retry")


ReasonScores: Any = create_model(
    "ReasonScores",
    __config__=ConfigDict(extra="forbid"),
    **{name: (Annotated[float, Field(ge=0, le=1)], ...) for name in REASONS},  # type: ignore[call-overload]
)


class ReasonAnswer(Answer):
    """Why a negative tweet is negative (docs/reasons.md)."""

    label: Literal[REASONS] = Field(description="the complaint reason the model finds most likely")  # type: ignore[valid-type]
    score: float = Field(ge=0, le=1, description="its calibrated probability")
    scores: ReasonScores
    unsure: bool = Field(description="the score is under the reason head's unsure line (with a warning)")


class Refused(Answer):
    """A tweet of a batch that was refused; the others are classified."""

    index: int = Field(ge=0)
    error: str


@functools.cache
def tweet_type(max_chars: int) -> Any:
    """A tweet: text of 1 to `max_chars` characters, not only spaces, encodable as UTF-8."""
    return Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=max_chars,
            pattern=r"\S",
            description=f"the tweet text: 1 to {max_chars} characters, not only spaces",
        ),
    ]


@functools.cache
def tweet_adapter(max_chars: int) -> TypeAdapter[str]:
    return TypeAdapter(tweet_type(max_chars))


@dataclasses.dataclass(frozen=True)
class Limits:
    max_tweet_chars: int
    max_batch: int
    max_batch_chars: int


@dataclasses.dataclass(frozen=True)
class Schemas:
    """The request and answer models for some limits and labels."""

    limits: Limits
    labels: tuple[str, ...]
    tweet_request: type[BaseModel]
    tweet_item: type[BaseModel]  # a batch's tweet with its context (a batch's tweet may also be its text alone)
    batch_request: type[BaseModel]
    feedback_request: type[BaseModel]
    prediction: type[BaseModel]
    tweet_answer: type[BaseModel]
    batch_answer: type[BaseModel]

    @staticmethod
    @functools.cache
    def build(limits: Limits, labels: tuple[str, ...]) -> Schemas:
        strict = ConfigDict(extra="forbid")
        tweet = tweet_type(limits.max_tweet_chars)
        # Types built at run time (the limits, the labels): Any to the type checker, checked by pydantic.
        label: Any = Literal[labels]
        reason: Any = Literal[REASONS]
        score: Any = Annotated[float, Field(ge=0, le=1)]
        context: Any = (
            Context | None,
            Field(default=None, description="what the social tool knows of the tweet: its reach (docs/operations.md)"),
        )
        tweet_item = create_model("TweetItem", __config__=strict, text=(tweet, ...), context=context)
        item = _inline(tweet_item)
        batch: Any = Annotated[
            list[Any],  # any item is taken: one that is not a valid tweet gets its own error entry
            Field(
                min_length=1,
                max_length=limits.max_batch,
                description=f"tweets, at most {limits.max_batch_chars} characters in all; each is "
                f"checked alone: 1 to {limits.max_tweet_chars} characters, not only spaces; a tweet is its "
                "text, or an object with its text and context",
                # The two shapes of a tweet, and anything else: every item is taken and checked alone (service.py),
                # a bad one refused with its error in the answer, the others classified.
                json_schema_extra={
                    "items": {"anyOf": [tweet_adapter(limits.max_tweet_chars).json_schema(), item, REFUSED_ALONE]}
                },
            ),
        ]
        validators: dict[str, Any] = {"consistent": model_validator(mode="after")(_expected_agrees)}
        tweet_request = create_model("TweetRequest", __config__=strict, text=(tweet, ...), context=context)
        batch_request = create_model("BatchRequest", __config__=strict, texts=(batch, ...))
        feedback_request = create_model(
            "FeedbackRequest",
            __config__=ConfigDict(extra="forbid", json_schema_extra=_agreement(labels)),
            __doc__="A verdict on a prediction; expected_label, when given, agrees with correct: the predicted "
            "label when the prediction was right, another when it was wrong.",
            __validators__=validators,
            prediction_id=(uuid.UUID, Field(description="the id that /api/predict returned")),
            prediction_token=(
                Annotated[StrictStr, Field(min_length=1)],
                Field(description="the token that /api/predict returned with the prediction"),
            ),
            text=(tweet, ...),
            predicted_label=(label, ...),
            correct=(StrictBool, ...),
            expected_label=(
                label,
                Field(
                    default=None,  # left out: null is refused, like any value outside the labels
                    description="the right label, when the prediction was wrong",
                    json_schema_extra=_no_default,
                ),
            ),
            expected_reason=(
                reason,
                Field(
                    default=None,
                    description="the right complaint reason of a negative tweet (docs/reasons.md), when staff "
                    "correct or confirm it",
                    json_schema_extra=_no_default,
                ),
            ),
        )
        scores = create_model("Scores", __config__=strict, **{name: (score, ...) for name in labels})  # type: ignore[call-overload]
        prediction = create_model(
            "Prediction",
            __config__=strict,
            label=(label, ...),
            scores=(scores, ...),
            prediction_id=(uuid.UUID, ...),
            prediction_token=(str, Field(description="signed proof of the prediction; send it back with feedback")),
            model=(ModelRef, ...),
            language=(
                Annotated[str, Field(pattern=LANGUAGE)],
                Field(
                    description='ISO 639-1 code of the tweet\'s language, "und" when it has too few letters to '
                    "tell; a tweet in a language the model does not read gets a warning"
                ),
            ),
            warnings=(
                list[str] | None,
                optional(
                    "present when the answer is not to be trusted: a tweet in a language the model does not read, "
                    "with no readable words, or an unsure sentiment or reason"
                ),
            ),
            unsure=(
                StrictBool,
                Field(
                    description="the top score is under the unsure line chosen on validation, where the model's "
                    "answers are right less than 60% of the time (the model's manifest)"
                ),
            ),
            reason=(
                ReasonAnswer | None,
                Field(description="the complaint reason of a negative answer; null for other answers"),
            ),
            reach=(
                Annotated[int, Field(ge=0)] | None,
                optional(
                    "when the tweet came with its context: the accounts known to have seen it, followers + "
                    "retweets + likes + replies (docs/operations.md, Reach)"
                ),
            ),
        )
        tweet_answer = create_model("TweetAnswer", __base__=prediction, labels=(list[label], ...))
        batch_answer = create_model(
            "BatchAnswer",
            __config__=strict,
            predictions=(list[prediction | Refused], Field(description="in request order")),  # type: ignore[valid-type]
            labels=(list[label], ...),
            model=(ModelRef, ...),
        )
        return Schemas(
            limits,
            labels,
            tweet_request,
            tweet_item,
            batch_request,
            feedback_request,
            prediction,
            tweet_answer,
            batch_answer,
        )

    @staticmethod
    def answer(shape: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
        """An answer body, checked against its model (optional fields left out when None, like `warnings`)."""
        return shape.model_validate(fields).model_dump(mode="json")


REFUSED_ALONE: Any = {"description": "any other item: refused alone, its error in the answer's predictions"}


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its definitions written in place (a batch item's, inside the batch's)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolved(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolved(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolved(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolved(value) for value in node]
        return node

    return dict(resolved(schema))


def context_problem(error: ErrorDetails, field: str) -> str:
    """The message of a problem in a tweet's `context` (at `field`, e.g. 'texts[3].context')."""
    inner = [str(part) for part in error["loc"][1:]]
    name = f"{field}.{inner[0]}" if inner else field
    if error["type"] == "extra_forbidden":
        return f"field '{name}' is unknown; a context has {[*COUNTS, 'created_at', 'tweet_id']}"
    if not inner:
        return f"field '{field}' must be an object: followers, retweets, likes, replies, created_at, tweet_id"
    if inner[0] in COUNTS:
        return f"field '{name}' must be a whole number from 0 to {MAX_COUNT:,}"
    if inner[0] == "created_at":
        return f"field '{name}' must be an RFC 3339 date-time with its offset, e.g. 2026-12-05T09:30:00Z"
    return f"field '{name}' must be 1 to 64 letters, digits, '_' or '-'"


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _agreement(labels: tuple[str, ...]) -> dict[str, Any]:
    """_expected_agrees in JSON Schema, for the OpenAPI document: JSON Schema cannot compare two fields, so one
    rule per predicted label and verdict (`properties` applies only when expected_label is given)."""

    def rule(label: str, correct: bool) -> dict[str, Any]:
        expected = {"const": label} if correct else {"not": {"const": label}}
        return {
            "if": {
                "properties": {"predicted_label": {"const": label}, "correct": {"const": correct}},
                "required": ["predicted_label", "correct"],
            },
            "then": {"properties": {"expected_label": expected}},
        }

    # expected_reason only for a tweet whose right sentiment is negative: said so, or confirmed.
    reason_rule = {
        "if": {"required": ["expected_reason"]},
        "then": {
            "anyOf": [
                {"properties": {"expected_label": {"const": NEGATIVE}}, "required": ["expected_label"]},
                {
                    "properties": {"predicted_label": {"const": NEGATIVE}, "correct": {"const": True}},
                    "required": ["predicted_label", "correct"],
                },
            ]
        },
    }
    rules = [rule(label, correct) for label in labels for correct in (True, False)]
    return {"allOf": [*rules, reason_rule] if NEGATIVE in labels else rules}


def _expected_agrees(request: Any) -> Any:
    if request.expected_label is not None and (request.expected_label == request.predicted_label) != request.correct:
        raise ValueError("contradicts")
    if request.expected_reason is not None:
        right = request.expected_label if request.expected_label is not None else request.predicted_label
        if right != NEGATIVE or (request.expected_label is None and not request.correct):  # unknown when wrong
            raise ValueError(REASON_RULE)
    return request


REASON_RULE = "expected_reason of a tweet that is not negative"


# ------------------------------------------------------------------ messages

# What each field must be, in the words of the API's messages.
HINTS = {
    "text": "the tweet to classify",
    "prediction_id": "the id that /api/predict returned",
    "prediction_token": "the token that /api/predict returned with the prediction",
}


def tweet_problem(error: ErrorDetails) -> str:
    """What is wrong with a tweet, from its validation error."""
    kind = error["type"]
    if kind in ("string_too_short", "string_pattern_mismatch"):
        return "must not be empty"
    if kind == "string_too_long":
        return f"has {len(error['input'])} characters; the limit is {error['ctx']['max_length']}"
    if kind == "string_unicode":  # JSON lets a lone surrogate through ("\ud800"); storage and CSV cannot hold it
        return "is not valid Unicode text (it holds a lone surrogate)"
    return "must be a string"


def message_of(error: ValidationError, labels: tuple[str, ...], field: str | None = None) -> str:
    """The API's message for the first problem of a request (fields are checked in their order)."""
    first = error.errors()[0]
    name = field or (str(first["loc"][0]) if first["loc"] else "")
    kind, quoted = first["type"], f"field '{name}'"
    if first.get("input", ...) is None:
        kind = "missing"  # null is no value: say what the field is for
    if not first["loc"] and REASON_RULE in first["msg"]:
        return (
            "field 'expected_reason' is the complaint reason of a negative tweet: give it when the right sentiment "
            "is negative (expected_label, or predicted_label with correct true)"
        )
    if not first["loc"]:  # the model's own rule: expected_label against correct
        return (
            "field 'expected_label' contradicts 'correct': give the right label when the prediction was wrong, "
            "and leave it out (or equal to the prediction) when it was right"
        )
    if name == "texts":
        if kind == "too_long":
            return f"{quoted} has {len(first['input'])} tweets; the limit is {first['ctx']['max_length']}"
        return f"{quoted} must be a non-empty list of tweets"
    if name == "context" and kind != "missing":
        return context_problem(first, "context")
    if name in ("predicted_label", "expected_label"):
        return f"{quoted} must be one of {list(labels)}"
    if name == "expected_reason":
        return f"{quoted} must be one of {list(REASONS)}"
    if name == "correct":
        return f"{quoted} must be true or false"
    if name == "prediction_id" and kind != "missing" and isinstance(first["input"], str):
        return f"{quoted} must be the UUID that /api/predict returned"
    if kind == "missing" or name in ("prediction_id", "prediction_token"):
        return f"{quoted} is required: {HINTS.get(name, 'see /api/openapi.json')}"
    return f"{quoted} {tweet_problem(first)}"
