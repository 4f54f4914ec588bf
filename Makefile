# Two commands on a fresh machine (Debian/Ubuntu, Python 3.10+):
#   make demo   install everything and run the browser demo on http://127.0.0.1:7860
#   make test   install everything (with test tools), run the linter and the whole test suite on each CPU path
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-once system-deps system-test-deps install install-test lint

system-deps:
	@command -v ffprobe >/dev/null || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg)

system-test-deps: system-deps
	@(command -v chromium >/dev/null && command -v espeak-ng >/dev/null) || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium espeak-ng)

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

# The suite on every CPU path a user may have: the whole suite with bfloat16 encoders forced on, then
# the tests whose results CPU kernels compute ("numerics": all but the modules listed in
# tests/conftest.py NOT_NUMERICS) with float32 encoders, then again with torch and oneDNN limited
# to AVX2 (a CPU without AVX-512 or bf16). The UI, parsing and store-bookkeeping tests compute
# nothing on those paths, so they run once.
test: lint
	C2F_CPU_BF16=1 $(BIN)/python -m pytest -q $(ARGS)
	C2F_CPU_BF16=0 $(BIN)/python -m pytest -q -m numerics $(ARGS)
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -q -m numerics $(ARGS)

# One pass only (for quick local runs): make test-once ARGS="tests/test_x.py"
test-once: install-test
	$(BIN)/python -m pytest -q $(ARGS)
