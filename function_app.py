"""Air Paradis tweet sentiment: Azure Functions app (Python v2 programming model).

POST /api/predict   {"text": "..."}                                  -> 200 label, scores, model, prediction_id
POST /api/feedback  {"prediction_id", "text", "predicted_label", "correct", "expected_label"?} -> 202
GET  /api/health                                                       -> 200 model details, or 503 with the reason
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import azure.functions as func

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
model_holder = ModelHolder(settings)  # one model per worker process, loaded on first use

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _json(payload: dict, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype="application/json",
                             headers=headers)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return _json({"error": message}, status, headers)


def _unavailable(error: ModelError) -> func.HttpResponse:
    logger.error("model unavailable: %s", error)
    return _error(f"model unavailable: {error}", 503, {"Retry-After": str(int(settings.model_retry_seconds))})


@app.route(route="predict", methods=["POST"])
def predict(req: func.HttpRequest) -> func.HttpResponse:
    try:
        text = parse_predict(req.get_body(), settings)
        model = model_holder.get()
    except BadRequest as error:
        return _error(str(error), error.status)
    except ModelError as error:
        return _unavailable(error)
    started = time.perf_counter()
    (prediction,) = model.predict([text])
    latency_ms = (time.perf_counter() - started) * 1000
    prediction_id = str(uuid.uuid4())
    logger.info("prediction %s", json.dumps({"prediction_id": prediction_id, "label": prediction.label,
                                             "model_version": model.manifest.version,
                                             "latency_ms": round(latency_ms, 3)}))
    return _json({"label": prediction.label, "scores": prediction.scores,
                  "model": {"name": model.manifest.name, "version": model.manifest.version},
                  "prediction_id": prediction_id})


@app.route(route="feedback", methods=["POST"])
def feedback(req: func.HttpRequest) -> func.HttpResponse:
    try:
        labels = model_holder.get().labels
    except ModelError:
        labels = list(DEFAULT_LABELS)  # feedback is still worth keeping while the model is down
    try:
        received = parse_feedback(req.get_body(), settings, labels)
    except BadRequest as error:
        return _error(str(error), error.status)
    feedback_id = str(uuid.uuid4())
    # The tweet text stays out of the logs: it is personal data.
    logger.info("feedback %s", json.dumps({"feedback_id": feedback_id, "prediction_id": received.prediction_id,
                                           "predicted_label": received.predicted_label,
                                           "correct": received.correct,
                                           "expected_label": received.expected_label}))
    return _json({"status": "accepted", "feedback_id": feedback_id}, 202)


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
