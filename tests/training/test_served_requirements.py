"""The registered pyfunc's requirements are read off its code (training/pipeline/served_requirements.py). Held
here against what that code imports while a logged pyfunc loads and answers, in a process of its own, and
against the pinned requirements files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata

from tests.conftest import ROOT, SHIPPED_MANIFEST
from training.pipeline.served_requirements import (
    PINNED_BY_MLFLOW,
    served_model_file,
    served_requirements,
    serving_package_folder,
)

# Records the top-level modules that the pyfunc's own code (tweet_sentiment, served_model.py) imports while
# MLflow loads the logged model and it scores tweets; imports made inside libraries are theirs to declare.
PROBE = """
import builtins, json, sys
import mlflow.pyfunc
import pandas as pd

imported = set()
real_import = builtins.__import__

def recording(name, globals=None, locals=None, fromlist=(), level=0):
    importer = globals or {}
    ours = (importer.get("__name__") or "").partition(".")[0] == "tweet_sentiment" or (
        importer.get("__file__") or ""
    ).endswith("served_model.py")
    if ours and level == 0:
        imported.add(name.partition(".")[0])
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = recording
model = mlflow.pyfunc.load_model(sys.argv[1])
answers = model.predict(pd.DataFrame({"text": ["@AirParadis lost my bag again \U0001f621", "thanks, lovely crew", ""]}))
assert answers["label"].notna().tolist() == [True, True, False], answers.to_dict("records")
print(json.dumps(sorted(imported)))
"""


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _pinned_files() -> dict[str, str]:
    """distribution -> version, from the pinned requirements files the environments are built from."""
    pins: dict[str, str] = {}
    for file in ("requirements.txt", "requirements-serve.txt", "training/requirements.txt"):
        for line in (ROOT / file).read_text().splitlines():
            requirement = line.split("#")[0].strip()
            if "==" in requirement:
                name, version = requirement.split("==")
                pins[_name(name)] = version
    return pins


def test_the_requirements_are_pinned_as_the_requirements_files_pin_them_and_hold_nothing_of_the_http_edge():
    requirements = {_name(name): version for name, version in (line.split("==") for line in served_requirements())}
    pinned = _pinned_files()
    assert {name: version for name, version in requirements.items() if name in pinned} == {
        name: pinned[name] for name in requirements if name in pinned
    }
    assert {"onnxruntime", "numpy", "tokenizers", "nltk", "pydantic"} <= set(requirements)
    # The HTTP edge (signed tokens, the Functions host) and the storage clients are never the pyfunc's.
    assert not {name for name in requirements if name == "pyjwt" or name.startswith("azure")}


def test_a_logged_pyfunc_imports_nothing_its_requirements_leave_out(tmp_path):
    import mlflow

    exported = tmp_path / "exported"
    exported.mkdir()
    for path in SHIPPED_MANIFEST.parent.glob("champion.*"):  # served_model.py reads the manifest as model.json
        shutil.copy(path, exported / ("model.json" if path == SHIPPED_MANIFEST else path.name))
    requirements = served_requirements()
    mlflow.pyfunc.save_model(
        path=str(tmp_path / "pyfunc"),
        python_model=str(served_model_file()),
        artifacts={"model": str(exported)},
        code_paths=[str(serving_package_folder())],
        pip_requirements=requirements,
    )
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "pyfunc")], cwd=tmp_path, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    imported = set(json.loads(probe.stdout.strip().splitlines()[-1]))
    third_party = {name for name in imported if name not in sys.stdlib_module_names} - {"tweet_sentiment"}
    required = {_name(line.split("==")[0]) for line in requirements}
    provided = {
        name
        for name, distributions in metadata.packages_distributions().items()
        if {_name(distribution) for distribution in distributions} & required
    }
    assert third_party - PINNED_BY_MLFLOW <= provided, third_party - PINNED_BY_MLFLOW - provided
    assert {"onnxruntime", "tokenizers", "emoji"} <= third_party  # the shipped model was scored through them
    logged = (tmp_path / "pyfunc" / "requirements.txt").read_text().split()
    assert set(requirements) <= set(logged)
