"""What the registered pyfunc is logged with: its code (served_model.py and the tweet_sentiment package) and
the requirements that code needs, read off its imports rather than kept by hand.

The requirements are the distributions of every third-party module imported by served_model.py and by the
tweet_sentiment modules it reaches (imports inside functions included: they run on first use), each pinned to
the version installed here, which the pinned requirements files installed. MLflow is left out: it pins itself in
every model it logs. A module of tweet_sentiment the pyfunc never reaches (the HTTP edge, the archive job)
adds nothing, so a pyfunc restored in its own environment gets what scoring needs and no more."""

from __future__ import annotations

import ast
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

SERVED_MODEL = "training.pipeline.served_model"  # the pyfunc's class, logged as a "model from code"
SERVING_PACKAGE = "tweet_sentiment"  # logged beside it as code
PINNED_BY_MLFLOW = {"mlflow"}


def _origin(module: str) -> Path:
    """The file of a module, found without importing it (served_model registers itself on import)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return Path(spec.origin)


def served_model_file() -> Path:
    return _origin(SERVED_MODEL)


def serving_package_folder() -> Path:
    return _origin(SERVING_PACKAGE).parent


def _imports(path: Path, package: str) -> set[str]:
    """Absolute names of the modules a file imports, anywhere in it; `package` resolves relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import language`
    return names


def imported_top_level_names() -> set[str]:
    """The third-party top-level modules the pyfunc's code imports: served_model.py and every tweet_sentiment
    module reachable from it."""
    folder = serving_package_folder()
    found: set[str] = set()
    pending = [(served_model_file(), SERVED_MODEL.rpartition(".")[0]), (folder / "__init__.py", SERVING_PACKAGE)]
    visited: set[Path] = set()
    while pending:
        path, package = pending.pop()
        if path in visited:
            continue
        visited.add(path)
        for name in _imports(path, package):
            top = name.partition(".")[0]
            if top == SERVING_PACKAGE:
                parts = name.split(".")[1:]
                module_file = folder.joinpath(*parts).with_suffix(".py") if parts else folder / "__init__.py"
                if module_file.is_file():
                    pending.append((module_file, SERVING_PACKAGE))
            elif top not in sys.stdlib_module_names and top not in ("training", "__future__"):
                found.add(top)
    return found


def served_requirements() -> list[str]:
    """`distribution==version` for each distribution the pyfunc's code imports, MLflow aside."""
    distributions = metadata.packages_distributions()
    pins: set[str] = set()
    for name in imported_top_level_names() - PINNED_BY_MLFLOW:
        if name not in distributions:
            raise ModuleNotFoundError(f"the pyfunc's code imports {name}, which no installed distribution provides")
        pins.update(f"{distribution}=={metadata.version(distribution)}" for distribution in distributions[name])
    return sorted(pins, key=str.lower)
