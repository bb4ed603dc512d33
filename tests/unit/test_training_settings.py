"""Training's settings (training/settings.py): every environment variable training reads is a field there, with
its default; a value training cannot use is refused with the variable's name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from training.settings import DEFAULTS, SettingError, TrainingSettings


def test_unset_or_empty_variables_keep_the_defaults_and_set_ones_are_parsed():
    assert TrainingSettings.from_environment({}) == DEFAULTS
    assert TrainingSettings.from_environment({"RETRAIN_HOLDOUT_SHARE": "", "GLOVE_PATH": ""}) == DEFAULTS
    parsed = TrainingSettings.from_environment(
        {"SERVING_SIZE_BUDGET_MB": "50", "RETRAIN_HOLDOUT_SHARE": "0.25", "GLOVE_PATH": "glove.txt"}
    )
    assert (parsed.size_budget_mb, parsed.holdout_share, parsed.glove_path) == (50.0, 0.25, Path("glove.txt"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RETRAIN_HOLDOUT_SHARE", "lots", "must be a number from 0 to 1 (default 0.2)"),
        ("RETRAIN_HOLDOUT_SHARE", "1.5", "must be a number from 0 to 1"),
        ("SERVING_SIZE_BUDGET_MB", "-30", "must be a number, 0 or more (default 30.0)"),
        ("SERVING_LATENCY_BUDGET_RATIO", "nan", "must be a number, 0 or more"),
        ("RETRAIN_MAX_TEST_DROP", "inf", "must be a number, 0 or more"),
    ],
)
def test_a_value_training_cannot_use_is_refused_naming_its_variable(name, value, message):
    with pytest.raises(SettingError, match=re.escape(f"environment variable {name}='{value}' {message}")):
        TrainingSettings.from_environment({name: value})


def _environment_reads(path: Path) -> set[str]:
    """Names read with os.environ.get, os.environ[...] or os.getenv (setdefault, a write for a library, aside)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if call and ast.unparse(node.func) in ("os.environ.get", "os.getenv", "environ.get"):
            names.add(ast.unparse(node.args[0]))
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            names.add(ast.unparse(node.slice))
    return names


def test_training_reads_the_environment_only_through_its_settings():
    reads = {
        str(path.relative_to(ROOT)): names
        for path in sorted((ROOT / "training").rglob("*.py"))
        if path.name != "settings.py" and (names := _environment_reads(path))
    }
    assert reads == {}
    assert set(TrainingSettings.environment_names().values()) >= {
        "SERVING_LATENCY_BUDGET_RATIO",
        "SERVING_SIZE_BUDGET_MB",
        "RETRAIN_MAX_TEST_DROP",
        "RETRAIN_HOLDOUT_SHARE",
        "GLOVE_PATH",
        "AIR_PARADIS_CACHE",
        "XDG_CACHE_HOME",
        "MLFLOW_TRACKING_URI",
    }
