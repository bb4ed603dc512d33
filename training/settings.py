"""The training settings, in one place: every environment variable training reads, with its default and its
kind, parsed together by `TrainingSettings.from_environment()`, which names the variable of a value it refuses.
`python -m training` parses them when it starts, so a wrong value stops it before any work; the modules that
use one (config, families/lstm.py, families/checkpoints.py, tracking, promotion/gate.py) read it from here.

To add a setting: a field below with `setting(NAME, default, kind)`, and its line in docs/training.md.
The service's own settings (the feedback store that retraining reads) are tweet_sentiment.settings.Settings.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KINDS = ("number", "share", "path", "text")


class SettingError(ValueError):
    """An environment variable holds a value training cannot use."""


def setting(name: str, default: Any, kind: str) -> Any:
    """A field read from the environment variable `name`; unset or empty keeps the default. Kinds: number (a
    finite number, 0 or more), share (a number from 0 to 1), path (a file or folder, as given), text."""
    assert kind in KINDS, kind
    return dataclasses.field(default=default, metadata={"env": name, "kind": kind})


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    # The serving budget a candidate must meet (config.Budget): ratios to the reference graph, and megabytes.
    latency_budget_ratio: float = setting("SERVING_LATENCY_BUDGET_RATIO", 1.10, "number")
    size_budget_mb: float = setting("SERVING_SIZE_BUDGET_MB", 30.0, "number")
    # The retraining gate (promotion/gate.py): the test part's allowed macro-F1 and accuracy drop, and the
    # share of the feedback's tweets held out to judge.
    max_test_drop: float = setting("RETRAIN_MAX_TEST_DROP", 0.005, "number")
    holdout_share: float = setting("RETRAIN_HOLDOUT_SHARE", 0.2, "share")
    glove_path: Path | None = setting("GLOVE_PATH", None, "path")  # a GloVe text file instead of glove.6B.50d
    # Unpacked checkpoints and the reference graph: AIR_PARADIS_CACHE itself, else <user cache>/air-paradis.
    cache_folder: Path | None = setting("AIR_PARADIS_CACHE", None, "path")
    user_cache: Path | None = setting("XDG_CACHE_HOME", None, "path")  # the user's cache (default ~/.cache)
    tracking_uri: str | None = setting("MLFLOW_TRACKING_URI", None, "text")  # else the local store
    # Threads of a transformer's fine-tuning, 0 for one per core. On a 2-core machine shared with another job,
    # 2 threads ran 5.8 s a batch of 32 and 1 thread 0.6 s (torch's threads wait for each other at every step).
    torch_threads: float = setting("TRAINING_TORCH_THREADS", 0, "number")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> TrainingSettings:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(field.metadata["env"])
            if raw:
                values[field.name] = _parse(field.metadata["env"], raw, field.metadata["kind"], field.default)
        return cls(**values)

    @classmethod
    def environment_names(cls) -> dict[str, str]:
        """Every environment variable training reads, by the name of its field."""
        return {field.name: field.metadata["env"] for field in dataclasses.fields(cls)}


DEFAULTS = TrainingSettings()


def _parse(name: str, raw: str, kind: str, default: Any) -> Any:
    if kind in ("number", "share"):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        upper = 1.0 if kind == "share" else math.inf
        if not 0 <= value <= upper or math.isinf(value):
            what = "a number from 0 to 1" if kind == "share" else "a number, 0 or more"
            raise SettingError(f"environment variable {name}={raw!r} must be {what} (default {default})")
        return value
    if kind == "path":
        return Path(raw)
    return raw
