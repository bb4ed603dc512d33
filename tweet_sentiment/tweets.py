"""The checks on one tweet that every path scoring tweets applies: the HTTP functions (service.py) and batch
scoring (scoring.py, which the registered MLflow pyfunc runs). They live below the HTTP edge so that batch
scoring needs the schema's tweet type and nothing of the edge (PyJWT, the request bodies)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .schema import tweet_adapter, tweet_problem
from .settings import Settings


class BadRequest(ValueError):
    """A request the client must correct: answered 4xx with `{"error": message}` (a row's error in a batch)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def checked_tweet(text: Any, field: str, settings: Settings) -> str:
    """The tweet, or BadRequest saying what is wrong with it (every path that scores tweets checks them so)."""
    try:
        return tweet_adapter(settings.max_tweet_chars).validate_python(text)
    except ValidationError as error:
        raise BadRequest(f"field {field} {tweet_problem(error.errors()[0])}") from None
