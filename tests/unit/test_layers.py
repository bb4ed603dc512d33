"""function_app.py is a module, which import-linter cannot analyse (it takes packages): held here to the first
contract in pyproject.toml, serving never imports training, by what importing it loads."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT

LOADED = "import json, sys, function_app; print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))"


def test_the_functions_app_loads_nothing_of_training():
    done = subprocess.run([sys.executable, "-c", LOADED], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "tweet_sentiment" in loaded
    assert "training" not in loaded


def test_no_module_edits_the_import_path():
    """Scripts run as modules from the root (`python -m scripts.local_server`); nothing puts folders on sys.path."""
    edits = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("tweet_sentiment", "training", "scripts", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*=", line)
    ]
    assert edits == []
