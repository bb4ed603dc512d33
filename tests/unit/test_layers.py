"""function_app.py is a module, which import-linter cannot analyse (it takes packages): held here to the first
contract in pyproject.toml, serving never imports training, by what importing it loads."""

from __future__ import annotations

import json
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
