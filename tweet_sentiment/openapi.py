"""The OpenAPI 3 description of the app, with the limits of the running settings. A test compares its paths
with the app's routes and schemathesis checks every answer of the local server against it."""

from __future__ import annotations

from typing import Any

from .service import FEEDBACK_FIELDS
from .settings import Settings


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def document(settings: Settings, labels: list[str]) -> dict[str, Any]:
    tweet = {
        "type": "string",
        "minLength": 1,
        "maxLength": settings.max_tweet_chars,
        "pattern": r"\S",
        "description": "the tweet text",
    }
    label = {"type": "string", "enum": list(labels)}
    scores = {
        "type": "object",
        "additionalProperties": False,
        "required": list(labels),
        "properties": {name: {"type": "number", "minimum": 0, "maximum": 1} for name in labels},
    }
    model = {
        "type": "object",
        "required": ["name", "version"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
    }
    token = {
        "type": "string",
        "minLength": 1,
        "description": "signed proof of the prediction; send it back with the feedback",
    }
    prediction: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["label", "scores", "prediction_id", "prediction_token", "model", "language"],
        "properties": {
            "label": label,
            "scores": scores,
            "model": model,
            "language": {
                "type": "string",
                "pattern": "^([a-z]{2}|und)$",
                "description": 'ISO 639-1 code of the tweet\'s language, "und" when it has too few letters to tell; '
                "a tweet in a language the model does not read gets a warning",
            },
            "prediction_id": {"type": "string", "format": "uuid"},
            "prediction_token": token,
            "warnings": {
                "type": "array",
                "items": {"type": "string"},
                "description": "present when the answer is not to be trusted: a tweet in a language the model "
                "does not read, or with no readable words",
            },
        },
    }
    refused = {
        "type": "object",
        "additionalProperties": False,
        "required": ["index", "error"],
        "description": "a tweet of the batch that was refused; the others are classified",
        "properties": {"index": {"type": "integer", "minimum": 0}, "error": {"type": "string"}},
    }
    batch = {
        "type": "array",
        "minItems": 1,
        "maxItems": settings.max_batch,
        # Any item is taken: one that is not a valid tweet gets its own error entry.
        "items": {
            "description": f"{tweet['description']} (1 to {settings.max_tweet_chars} characters, not only spaces)"
        },
        "description": f"at most {settings.max_batch_chars} characters in all",
    }
    key_required: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyQuery": []}]
    bad = _error("invalid request: the error says what to correct")
    too_large = _error(f"request body over {settings.max_request_bytes} bytes")
    not_json = _error("the body is not sent as application/json (UTF-8)")
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Air Paradis tweet sentiment",
            "version": "1.0.0",
            "description": "Sentiment of tweets about the airline, and users' feedback on it.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Sentiment of one tweet or of a batch",
                    "security": key_required,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "required": ["text"],
                                            "properties": {"text": tweet},
                                        },
                                        {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "required": ["texts"],
                                            "properties": {"texts": batch},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one result for `text`, or `predictions` in request order for `texts`",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {
                                                **prediction,
                                                "required": [*prediction["required"], "labels"],
                                                "properties": {
                                                    **prediction["properties"],
                                                    "labels": {"type": "array", "items": label},
                                                },
                                            },
                                            {
                                                "type": "object",
                                                "additionalProperties": False,
                                                "required": ["predictions", "labels", "model"],
                                                "properties": {
                                                    "predictions": {
                                                        "type": "array",
                                                        "items": {"oneOf": [prediction, refused]},
                                                    },
                                                    "labels": {"type": "array", "items": label},
                                                    "model": model,
                                                },
                                            },
                                        ]
                                    }
                                }
                            },
                        },
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
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": sorted(FEEDBACK_FIELDS - {"expected_label"}),
                                    "properties": {
                                        "prediction_id": {"type": "string", "format": "uuid"},
                                        "prediction_token": token,
                                        "text": tweet,
                                        "predicted_label": label,
                                        "correct": {"type": "boolean"},
                                        "expected_label": {**label, "description": "the right label, when wrong"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json("FeedbackAccepted", "stored (or already stored: a retry is safe)"),
                        "400": bad,
                        "415": not_json,
                        "413": too_large,
                        "403": _error(
                            "the token does not prove this feedback: forged, expired, or another tweet, "
                            "label or prediction"
                        ),
                        "409": _error("a different feedback was already recorded for this prediction"),
                        "503": _error(
                            "the feedback may not be stored; retry after Retry-After seconds with the "
                            "same prediction_id"
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
                        "200": _json("Health", "the model is loaded"),
                        "503": _json("Health", "the model cannot be loaded; the error says why"),
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
                            "description": "OpenAPI 3 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "FeedbackAccepted": {
                    "type": "object",
                    "required": ["status", "feedback_id"],
                    "properties": {
                        "status": {"type": "string", "enum": ["accepted"]},
                        "feedback_id": {"type": "string", "format": "uuid"},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "error": {"type": "string"},
                        "model": {
                            "type": "object",
                            "required": ["name", "version", "labels"],
                            "properties": {
                                "name": {"type": "string"},
                                "version": {"type": "string"},
                                "family": {"type": "string"},
                                "labels": {"type": "array", "items": {"type": "string"}},
                                "created_at": {"type": "string"},
                                "load_seconds": {"type": "number"},
                            },
                        },
                    },
                },
            },
        },
    }
    paths = document["paths"]
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
    return document
