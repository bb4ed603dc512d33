"""Air Paradis tweet sentiment: Azure Functions app (Python v2 programming model).

POST /api/predict       {"text": "..."} or {"texts": [...]}  -> 200 label, scores, model, prediction_id (each)
POST /api/feedback      {"prediction_id", "text", "predicted_label", "correct", "expected_label"?} -> 202 once stored
GET  /api/health        -> 200 model details, or 503 with the reason
GET  /api/ui            -> the "Tweet Sentiment Prediction" page
GET  /api/openapi.json  -> OpenAPI 3 description of the above
predict and feedback need a function key in Azure; the others are anonymous.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from importlib import resources

import azure.functions as func

from tweet_sentiment import openapi, telemetry
from tweet_sentiment.feedback import FeedbackStore, FeedbackUnavailable
from tweet_sentiment.manifest import ModelError
from tweet_sentiment.service import (
    DEFAULT_LABELS,
    BadRequest,
    ModelHolder,
    Settings,
    parse_feedback,
    parse_predict,
)

logger = logging.getLogger("tweet_sentiment")
logger.setLevel(logging.INFO)

settings = Settings.from_environment()
telemetry_mode = telemetry.configure()
model_holder = ModelHolder(settings)  # one model per worker process, loaded on first use
feedback_store = FeedbackStore(settings.feedback_connection_string, settings.feedback_table)
UI_PAGE = resources.files("tweet_sentiment").joinpath("ui.html").read_bytes()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _json(payload: dict, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype="application/json",
                             headers=headers)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return _json({"error": message}, status, headers)


def _unavailable(error: ModelError) -> func.HttpResponse:
    logger.error("model unavailable: %s", error)
    return _error(f"model unavailable: {error}", 503, {"Retry-After": str(int(settings.model_retry_seconds))})


def _labels() -> list[str]:
    try:
        return model_holder.get().labels
    except ModelError:
        return list(DEFAULT_LABELS)  # feedback and the documentation stay available while the model is down


def _tweet_for_telemetry(text: str) -> str | None:
    return telemetry.mask(text) if settings.telemetry_includes_text else None


@app.route(route="predict", methods=["POST"])
def predict(req: func.HttpRequest) -> func.HttpResponse:
    try:
        texts, batch = parse_predict(req.get_body(), settings)
        model = model_holder.get()
    except BadRequest as error:
        return _error(str(error), error.status)
    except ModelError as error:
        return _unavailable(error)
    started = time.perf_counter()
    predictions = model.predict(texts)  # one ONNX Runtime run for the whole batch
    latency_ms = (time.perf_counter() - started) * 1000
    about_model = {"name": model.manifest.name, "version": model.manifest.version}
    results = []
    for text, prediction in zip(texts, predictions):
        prediction_id = str(uuid.uuid4())
        results.append({"label": prediction.label, "scores": prediction.scores, "prediction_id": prediction_id,
                        "model": about_model})
        telemetry.emit("prediction", {
            "prediction_id": prediction_id, "predicted_label": prediction.label,
            "scores": json.dumps(prediction.scores), "model_version": model.manifest.version,
            "latency_ms": round(latency_ms / len(texts), 3), "batch_size": len(texts),
            "text": _tweet_for_telemetry(text)})
    if batch:
        return _json({"predictions": results, "labels": model.labels, "model": about_model})
    return _json({**results[0], "labels": model.labels})


@app.route(route="feedback", methods=["POST"])
def feedback(req: func.HttpRequest) -> func.HttpResponse:
    try:
        received = parse_feedback(req.get_body(), settings, _labels())
    except BadRequest as error:
        return _error(str(error), error.status)
    try:
        feedback_store.save({"prediction_id": received.prediction_id, "text": received.text,
                             "predicted_label": received.predicted_label, "correct": received.correct,
                             "expected_label": received.expected_label})
    except FeedbackUnavailable as error:
        logger.error("feedback %s not stored: %s", received.prediction_id, error)
        retry = str(settings.feedback_retry_seconds)
        return _error(f"feedback not stored, please retry in {retry} seconds: {error}", 503, {"Retry-After": retry})
    telemetry.emit("feedback", {
        "prediction_id": received.prediction_id, "predicted_label": received.predicted_label,
        "correct": received.correct, "expected_label": received.expected_label,
        "model_version": model_holder.get().manifest.version if model_holder.loaded else None,
        "text": _tweet_for_telemetry(received.text)})
    return _json({"status": "accepted", "feedback_id": received.prediction_id}, 202)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        model = model_holder.get()
    except ModelError as error:
        return _json({"status": "unavailable", "error": str(error)}, 503)
    manifest = model.manifest
    return _json({"status": "ok", "model": {"name": manifest.name, "version": manifest.version,
                                            "family": manifest.family, "labels": manifest.labels,
                                            "created_at": manifest.created_at,
                                            "load_seconds": round(model.load_seconds, 4)}})


@app.route(route="ui", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(UI_PAGE, status_code=200, mimetype="text/html", charset="utf-8")


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return _json(openapi.document(settings, _labels()))
