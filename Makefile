# Two entry points on a fresh machine (Python 3.11):
#   make serve   set up the serving environment and serve the API on http://127.0.0.1:7071 with the shipped model
#   make test    set up everything (serving, training, test tools) and run the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7071

.PHONY: serve test train clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per requirements set: pip runs again only when a requirements file changes.
$(VENV)/.serve: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.train: training/requirements.txt $(VENV)/.serve
	$(BIN)/pip install --quiet -r training/requirements.txt
	touch $@

serve: $(VENV)/.serve
	$(BIN)/python scripts/local_server.py --port $(PORT)

test: $(VENV)/.train
	$(BIN)/python -m pytest

train: $(VENV)/.train
	$(BIN)/python -m training train

clean:
	rm -rf $(VENV) .pytest_cache
