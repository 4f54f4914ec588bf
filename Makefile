# Two commands on a fresh machine (Debian/Ubuntu, Python 3.10+):
#   make demo   install everything and run the browser demo on http://127.0.0.1:7860
#   make test   install everything (with test tools) and run the linter and the whole test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test system-deps system-test-deps install install-test lint

system-deps:
	@command -v ffprobe >/dev/null || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg)

system-test-deps: system-deps
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: system-deps $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt

install-test: system-test-deps $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements-test.txt

demo: install
	$(BIN)/python app.py $(ARGS)

lint: install-test
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q $(ARGS)
