"""Air Paradis tweet sentiment: Azure Functions app (Python v2 programming model).

POST /api/predict       {"text": "..."} or {"texts": [...]}
                        -> 200 label, scores, model, prediction_id, prediction_token (each; in a batch a refused
                        tweet gets {"index", "error"} and the others are classified)
POST /api/feedback      {"prediction_id", "prediction_token", "text", "predicted_label", "correct", "expected_label"?,
                         "expected_reason"?}
                        -> 202 once stored (403 for a token that does not prove it, 409 for a different second one)
GET  /api/health        -> 200 model details, or 503 with the reason
GET  /api/ui            -> the "Tweet Sentiment Prediction" page
GET  /api/openapi.json  -> OpenAPI 3 description of the above
POST /api/staff/predict, /api/staff/feedback  the same, for the page: staff signed in with Entra ID in Azure
predict and feedback need a function key in Azure; the staff routes need sign-in; the others are anonymous.

Archives: a CSV or JSON Lines file dropped in the container tweets-in is scored into tweets-out by the
queue-triggered functions at the end (tweet_sentiment/archive.py describes the steps).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from importlib import resources
from typing import Any

import azure.functions as func

from tweet_sentiment import archive, openapi, telemetry
from tweet_sentiment.feedback import FeedbackConflict, FeedbackStore, FeedbackUnavailable
from tweet_sentiment.manifest import ModelError
from tweet_sentiment.reach import COUNTS, reach
from tweet_sentiment.schema import Error, FeedbackAccepted, Health, HealthModel
from tweet_sentiment.security import JSON_HEADERS, page_headers
from tweet_sentiment.service import (
    DEFAULT_LABELS,
    BadRequest,
    ModelHolder,
    check_content_length,
    check_json_content_type,
    parse_feedback,
    parse_predict,
    prediction_signer,
    schemas,
)
from tweet_sentiment.settings import Settings
from tweet_sentiment.signing import TokenRejected

logger = logging.getLogger("tweet_sentiment")
logger.setLevel(logging.INFO)

settings = Settings.from_environment()
telemetry_mode = telemetry.configure(settings)
model_holder = ModelHolder(settings)  # one model per worker process, loaded on first use
feedback_store = FeedbackStore(
    settings.feedback_connection_string,
    settings.feedback_table,
    settings.feedback_timeout_seconds,
    settings.feedback_concurrent_writes,
    table_endpoint=settings.feedback_table_endpoint,
)
signer = prediction_signer(settings)
UI_PAGE = resources.files("tweet_sentiment").joinpath("ui.html").read_bytes()
UI_HEADERS = page_headers(UI_PAGE)
# What anonymous callers are told when the model is down; the reason, with paths, goes to the log only.
MODEL_UNAVAILABLE = "model unavailable: the service cannot load its model right now; retry later"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _json(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload),
        status_code=status,
        mimetype="application/json",
        headers={**JSON_HEADERS, **(headers or {})},
    )


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return _json(Error(error=message).model_dump(), status, headers)


def _unavailable(error: ModelError) -> func.HttpResponse:
    logger.error("model unavailable: %s", error)
    return _error(MODEL_UNAVAILABLE, 503, {"Retry-After": str(int(settings.model_retry_seconds))})


def _labels() -> list[str]:
    try:
        return model_holder.get().labels
    except ModelError:
        return list(DEFAULT_LABELS)  # feedback and the documentation stay available while the model is down


def _tweet_for_telemetry(text: str) -> str | None:
    return telemetry.mask(text) if settings.telemetry_includes_text else None


def _body(req: func.HttpRequest) -> bytes:
    check_content_length(req.headers, settings)
    check_json_content_type(req.headers)
    return req.get_body()


def _warm_up() -> None:
    """Load the model when the worker starts (the host imports this module then), not on a user's request."""
    try:
        model_holder.get()
    except ModelError as error:
        logger.error("model not loaded at start: %s", error)


_warm_up()


def _predict(req: func.HttpRequest) -> func.HttpResponse:
    try:
        request = parse_predict(_body(req), settings)
        model = model_holder.get()
    except BadRequest as error:
        return _error(str(error), error.status)
    except ModelError as error:
        return _unavailable(error)
    started = time.perf_counter()
    predictions = iter(model.predict(request.valid) if request.valid else [])
    latency_ms = (time.perf_counter() - started) * 1000
    version = model.manifest.version
    about_model = {"name": model.manifest.name, "version": version}
    answers = schemas(settings, model.labels)
    results: list[dict[str, Any]] = []
    for index, text in enumerate(request.texts):
        if text is None:
            results.append({"index": index, "error": request.errors[index]})
            continue
        prediction = next(predictions)
        prediction_id = str(uuid.uuid4())
        context = request.context_of(index)
        results.append(
            {
                "label": prediction.label,
                "scores": prediction.scores,
                "prediction_id": prediction_id,
                "prediction_token": signer.sign(prediction_id, prediction.label, version, text),
                "model": about_model,
                "language": prediction.language,
                "warnings": prediction.warnings or None,
                "unsure": prediction.unsure,
                "reason": dataclasses.asdict(prediction.reason) if prediction.reason else None,
                "reach": reach(context) if context else None,
            }
        )
        telemetry.emit(
            "prediction",
            {
                "prediction_id": prediction_id,
                "predicted_label": prediction.label,
                "scores": json.dumps(prediction.scores),
                "model_version": version,
                "language": prediction.language,
                "readable": prediction.readable,  # the bad-buzz rule counts only tweets the model can read
                "unsure": prediction.unsure,
                "reason": prediction.reason.label if prediction.reason else "",  # why a negative tweet is
                # How loud it is: the numbers only (never the text, an author or a tweet id).
                "reach": reach(context),
                **{name: getattr(context, name) for name in COUNTS if context and getattr(context, name) is not None},
                "latency_ms": round(latency_ms / len(request.valid), 3),
                "batch_size": len(request.valid),
                "text": _tweet_for_telemetry(text),
            },
        )
    if request.batch:
        batch = {"predictions": results, "labels": model.labels, "model": about_model}
        return _json(answers.answer(answers.batch_answer, batch))
    return _json(answers.answer(answers.tweet_answer, {**results[0], "labels": model.labels}))


def _caller(req: func.HttpRequest) -> str | None:
    # Set by App Service authentication (Entra ID sign-in), which strips any such header a client sends.
    return req.headers.get("x-ms-client-principal-name") or None


def _feedback(req: func.HttpRequest) -> func.HttpResponse:
    try:
        received = parse_feedback(_body(req), settings, _labels())
        proof = signer.verify(
            received.prediction_token, received.prediction_id, received.predicted_label, received.text
        )
    except BadRequest as error:
        return _error(str(error), error.status)
    except TokenRejected as error:
        return _error(str(error), 403)
    try:
        written = feedback_store.save(
            {
                "prediction_id": received.prediction_id,
                "text": received.text,
                "predicted_label": received.predicted_label,
                "correct": received.correct,
                "expected_label": received.expected_label,
                "expected_reason": received.expected_reason,
                "model_version": proof.model_version,
                "predicted_at": proof.issued_at,
                "signing_key_id": proof.key_id,
                "caller": _caller(req),
            }
        )
    except FeedbackConflict as error:
        return _error(f"{error}: feedback is recorded once per prediction", 409)
    except FeedbackUnavailable as error:
        logger.error("feedback %s may not be stored: %s", received.prediction_id, error)
        retry = str(settings.feedback_retry_seconds)
        return _error(
            f"feedback may not be stored: retry in {retry} seconds with the same prediction_id and "
            "prediction_token (a retry never records it twice)",
            503,
            {"Retry-After": retry},
        )
    if written:  # a client retry of the same feedback is acknowledged again, and counted once
        telemetry.emit(
            "feedback",
            {
                "prediction_id": received.prediction_id,
                "predicted_label": received.predicted_label,
                "correct": received.correct,
                "expected_label": received.expected_label,
                "expected_reason": received.expected_reason or "",
                "model_version": proof.model_version,
                "text": _tweet_for_telemetry(received.text),
            },
        )
    return _json(FeedbackAccepted(feedback_id=uuid.UUID(received.prediction_id)).model_dump(mode="json"), 202)


# Social tools: function keys.
@app.route(route="predict", methods=["POST"])
def predict(req: func.HttpRequest) -> func.HttpResponse:
    return _predict(req)


@app.route(route="feedback", methods=["POST"])
def feedback(req: func.HttpRequest) -> func.HttpResponse:
    return _feedback(req)


# Staff on the page: signed in with Microsoft Entra ID by App Service authentication, which guards these routes
# in Azure and passes who signed in as x-ms-client-principal-* headers (it removes any a client sends).
def _staff_only(req: func.HttpRequest) -> func.HttpResponse | None:
    if settings.staff_sign_in_required and not req.headers.get("x-ms-client-principal-id"):
        return _error("sign in with your Air Paradis account to use this page", 401)
    return None


@app.route(route="staff/predict", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def staff_predict(req: func.HttpRequest) -> func.HttpResponse:
    return _staff_only(req) or _predict(req)


@app.route(route="staff/feedback", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def staff_feedback(req: func.HttpRequest) -> func.HttpResponse:
    return _staff_only(req) or _feedback(req)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        model = model_holder.get()
    except ModelError as error:
        logger.error("health: model unavailable: %s", error)
        retry = {"Retry-After": str(int(settings.model_retry_seconds))}
        return _json(Health(status="unavailable", error=MODEL_UNAVAILABLE).model_dump(exclude_none=True), 503, retry)
    manifest = model.manifest
    about = HealthModel(
        name=manifest.name,
        version=manifest.version,
        family=manifest.family,
        labels=manifest.labels,
        created_at=manifest.created_at,
        load_seconds=round(model.load_seconds, 4),
    )
    return _json(Health(status="ok", model=about).model_dump(exclude_none=True))


@app.route(route="ui", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(UI_PAGE, status_code=200, mimetype="text/html", charset="utf-8", headers=UI_HEADERS)


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return _json(openapi.document(settings, _labels()))


# Archives in Blob storage: one step per queue, each message a small unit of work (see tweet_sentiment/archive.py).
_archive_storage: archive.Storage | None = None


def _archive() -> archive.Storage:
    global _archive_storage
    if _archive_storage is None:
        _archive_storage = archive.Storage.from_settings(settings)
    return _archive_storage


def _message(message: func.QueueMessage) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(message.get_body())
    return body


@app.queue_trigger(arg_name="message", queue_name=archive.FILES_QUEUE, connection=archive.CONNECTION)
def archive_file(message: func.QueueMessage) -> None:
    archive.plan(_archive(), _message(message), settings)


@app.queue_trigger(
    arg_name="message", queue_name=archive.FILES_QUEUE + archive.POISON_SUFFIX, connection=archive.CONNECTION
)
def archive_file_failed(message: func.QueueMessage) -> None:
    archive.file_failed(_archive(), _message(message))


@app.queue_trigger(arg_name="message", queue_name=archive.CHUNKS_QUEUE, connection=archive.CONNECTION)
def archive_chunk(message: func.QueueMessage) -> None:
    archive.score_chunk(_archive(), _message(message), model_holder.get, settings)


@app.queue_trigger(
    arg_name="message", queue_name=archive.CHUNKS_QUEUE + archive.POISON_SUFFIX, connection=archive.CONNECTION
)
def archive_chunk_failed(message: func.QueueMessage) -> None:
    archive.chunk_failed(_archive(), _message(message))


@app.queue_trigger(arg_name="message", queue_name=archive.ASSEMBLY_QUEUE, connection=archive.CONNECTION)
def archive_assemble(message: func.QueueMessage) -> None:
    archive.assemble(_archive(), _message(message))
