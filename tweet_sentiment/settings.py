"""The app settings, in one place: each is a field of `Settings` whose metadata names its environment variable
(an app setting in Azure). The service, the training commands that reach the feedback store, the deployment
tests and the README's table all read the names from here.

To add a setting: a field below with `setting(NAME, default, kind)`, its line in the README's configuration
table, and its value in infra/main.bicep (a test fails until Bicep sets every setting, but the local-only ones).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

APP_ROOT = Path(__file__).resolve().parent.parent
KINDS = ("count", "text", "flag", "secret", "path")


def setting(name: str, default: Any, kind: str, fallback: str | None = None) -> Any:
    """A field read from the environment variable `name` (or `fallback` when that is unset). Kinds: count (a
    positive integer), text, flag ("true"/"false"), secret (never printed), path (relative to the app root)."""
    assert kind in KINDS, kind
    return dataclasses.field(
        default=default, repr=kind != "secret", metadata={"env": name, "kind": kind, "fallback": fallback}
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """App settings with the documented defaults."""

    model_path: Path = setting("SENTIMENT_MODEL_PATH", APP_ROOT / "models" / "champion.json", "path")
    onnx_threads: int = setting("ONNX_INTRA_OP_THREADS", 1, "count")
    max_tweet_chars: int = setting("MAX_TWEET_CHARS", 1000, "count")
    max_request_bytes: int = setting("MAX_REQUEST_BYTES", 64 * 1024, "count")
    max_batch: int = setting("MAX_BATCH_TWEETS", 64, "count")
    max_batch_chars: int = setting("MAX_BATCH_CHARS", 16_000, "count")  # bounds one request's CPU
    feedback_table: str = setting("FEEDBACK_TABLE", "feedback", "text")
    # Azure: the table endpoint, reached with the managed identity. Locally: a connection string (Azurite).
    feedback_table_endpoint: str | None = setting("FEEDBACK_TABLE_ENDPOINT", None, "text")
    feedback_connection_string: str | None = setting(
        "FEEDBACK_STORAGE_CONNECTION_STRING", None, "secret", fallback="AzureWebJobsStorage"
    )
    feedback_timeout_seconds: int = setting("FEEDBACK_STORAGE_TIMEOUT_SECONDS", 2, "count")
    # Storage calls that may wait at once per worker; the rest answer 503 at once.
    feedback_concurrent_writes: int = setting("FEEDBACK_CONCURRENT_WRITES", 4, "count")
    signing_key: str | None = setting("PREDICTION_SIGNING_KEY", None, "secret")
    previous_signing_key: str | None = setting("PREDICTION_SIGNING_KEY_PREVIOUS", None, "secret")
    token_max_age_days: int = setting("PREDICTION_TOKEN_MAX_AGE_DAYS", 30, "count")
    staff_sign_in_required: bool = setting("STAFF_SIGN_IN_REQUIRED", False, "flag")
    telemetry_connection_string: str | None = setting("APPLICATIONINSIGHTS_CONNECTION_STRING", None, "secret")
    worker_configures_telemetry: bool = setting("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", False, "flag")
    telemetry_includes_text: bool = setting("TELEMETRY_INCLUDE_TEXT", False, "flag")  # tweets are personal data
    # The archive job (tweet_sentiment/archive.py): the Functions connection `ArchiveStorage`, by identity in
    # Azure (the two service URIs), by connection string locally (Azurite).
    archive_connection_string: str | None = setting("ArchiveStorage", None, "secret")
    archive_blob_endpoint: str | None = setting("ArchiveStorage__blobServiceUri", None, "text")
    archive_queue_endpoint: str | None = setting("ArchiveStorage__queueServiceUri", None, "text")
    # Tweets per chunk: one queue message, scored by one invocation in well under a minute.
    archive_chunk_tweets: int = setting("ARCHIVE_CHUNK_TWEETS", 5000, "count")
    # Fixed behaviour, not settings.
    model_retry_seconds: float = 30.0
    feedback_retry_seconds: int = 30

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name, fallback = field.metadata.get("env"), field.metadata.get("fallback")
            if name is None:
                continue
            raw = environ.get(name) or (environ.get(fallback) if fallback else None)
            if raw:
                values[field.name] = _parse(name, raw, field.metadata["kind"], field.default)
        return cls(**values)

    @classmethod
    def environment_names(cls) -> dict[str, str]:
        """Every environment variable the service reads, by the name of its field (fallbacks included)."""
        names = {}
        for field in dataclasses.fields(cls):
            if "env" in field.metadata:
                names[field.name] = field.metadata["env"]
                if field.metadata["fallback"]:
                    names[f"{field.name} (fallback)"] = field.metadata["fallback"]
        return names


def _parse(name: str, raw: str, kind: str, default: Any) -> Any:
    if kind == "count":
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"app setting {name}={raw!r} must be a positive integer (default {default})")
        return int(raw)
    if kind == "flag":
        if raw.lower() not in ("true", "false"):
            raise ValueError(f"app setting {name}={raw!r} must be true or false (default {str(default).lower()})")
        return raw.lower() == "true"
    if kind == "path":
        path = Path(raw)
        return path if path.is_absolute() else APP_ROOT / path
    if kind == "secret" and raw.startswith("@Microsoft.KeyVault("):
        # App Service passes a reference it could not resolve as its own text, which is public: never a key.
        logger.error(
            "app setting %s is an unresolved Key Vault reference: check that the app's identity has the "
            "Key Vault Secrets User role and that the secret exists",
            name,
        )
        return None
    return raw
