"""The OpenAPI 3.1 description of the app, generated from the pydantic models that validate the requests and
build the answers (tweet_sentiment/schema.py), with the limits of the running settings and the served
model's labels. Only the routes, their security and their statuses are written here. A test compares the
paths with the app's routes and schemathesis checks every answer of the local server against it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .schema import Error, FeedbackAccepted, Health
from .service import schemas
from .settings import Settings

REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _body(description: str, *models: type[BaseModel]) -> dict[str, Any]:
    schema = _ref(models[0]) if len(models) == 1 else {"oneOf": [_ref(model) for model in models]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _body(description, Error)


def document(settings: Settings, labels: list[str]) -> dict[str, Any]:
    models = schemas(settings, labels)
    requests = (models.tweet_request, models.batch_request, models.feedback_request)
    answers = (models.tweet_answer, models.batch_answer, FeedbackAccepted, Health, Error)
    _, definitions = models_json_schema(
        [*((model, "validation") for model in requests), *((model, "serialization") for model in answers)],
        ref_template=REF,
    )
    key_required: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyQuery": []}]
    bad = _error("invalid request: the error says what to correct")
    too_large = _error(f"request body over {settings.max_request_bytes} bytes")
    not_json = _error("the body is not sent as application/json (UTF-8)")
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "operationId": "predict",
                "summary": "Sentiment of one tweet or of a batch",
                "security": key_required,
                "requestBody": {
                    "required": True,
                    **_body("`text` or `texts`", models.tweet_request, models.batch_request),
                },
                "responses": {
                    "200": _body(
                        "one result for `text`, or `predictions` in request order for `texts`",
                        models.tweet_answer,
                        models.batch_answer,
                    ),
                    "400": bad,
                    "415": not_json,
                    "413": _error(
                        f"request body over {settings.max_request_bytes} bytes, or a batch "
                        f"over {settings.max_batch_chars} characters"
                    ),
                    "503": _error("the model cannot be loaded; retry later"),
                },
            }
        },
        "/feedback": {
            "post": {
                "operationId": "feedback",
                "summary": "Whether a prediction was right",
                "security": key_required,
                "requestBody": {"required": True, **_body("the prediction and the verdict", models.feedback_request)},
                "responses": {
                    "202": _body("stored (or already stored: a retry is safe)", FeedbackAccepted),
                    "400": bad,
                    "415": not_json,
                    "413": too_large,
                    "403": _error(
                        "the token does not prove this feedback: forged, expired, or another tweet, label or prediction"
                    ),
                    "409": _error("a different feedback was already recorded for this prediction"),
                    "503": _error(
                        "the feedback may not be stored; retry after Retry-After seconds with the same prediction_id"
                    ),
                },
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Model in service",
                "security": [],
                "responses": {
                    "200": _body("the model is loaded", Health),
                    "503": _body("the model cannot be loaded; the error says why", Health),
                },
            }
        },
        "/ui": {
            "get": {
                "operationId": "ui",
                "summary": "The prediction page",
                "security": [],
                "responses": {
                    "200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    for name in ("predict", "feedback"):  # the page's routes: staff sign-in instead of a function key
        operation = {
            **paths[f"/{name}"]["post"],
            "operationId": f"staff_{name}",
            "security": [],
            "description": "For the page: in Azure, App Service authentication requires a Microsoft Entra ID "
            "sign-in (401 without one).",
        }
        operation["responses"] = {**operation["responses"], "401": _error("sign-in required (Azure)")}
        paths[f"/staff/{name}"] = {"post": operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Air Paradis tweet sentiment",
            "version": "1.0.0",
            "description": "Sentiment of tweets about the airline, and users' feedback on it.",
        },
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "schemas": definitions["$defs"],
        },
    }
