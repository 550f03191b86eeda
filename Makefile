# muss-builder: two commands do all the set-up on a fresh machine.
#   make build-dataset MOVIES="a.mp4 b.mkv"   (no MOVIES: demo footage shipped inside packages)
#   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pinned so that a CPU-only machine installs the CPU wheel; override on a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= cpu,test,dev
OUT ?= out
CONFIG ?= pipelines/default.yaml
EXECUTOR ?= ray
MOVIES ?=
# TEST_WORKERS=2 runs the suite on two pytest workers, a whole test file to each: 15.5 min
# against 19.6 on 2 cores, but the Ray node-loss test failed once under it (docs/benchmarks.md
# "Test suite wall time"), so the default stays one process (0)
TEST_WORKERS ?= 0
STAMP := $(VENV)/.installed
# faiss-cpu and faiss-gpu install into the same faiss/ folder: one extra or the other, never both
ifneq ($(and $(findstring cpu,$(EXTRAS)),$(findstring gpu,$(EXTRAS))),)
$(error EXTRAS=$(EXTRAS) names both cpu and gpu; pick one (faiss-cpu and faiss-gpu clash))
endif

.DEFAULT_GOAL := help
.PHONY: help venv ffmpeg build-dataset test lint format clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'
	@echo "  variables: MOVIES='a.mp4 b.mkv' OUT=$(OUT) CONFIG=$(CONFIG) EXECUTOR=ray|inline TEST_WORKERS=$(TEST_WORKERS)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

venv: $(STAMP) ## create or refresh .venv with the package and its extras

ffmpeg: ## make sure ffmpeg and ffprobe exist (installs them with apt-get when possible)
	@bash scripts/ensure_ffmpeg.sh

build-dataset: venv ffmpeg ## build a dataset from MOVIES (default: shipped demo footage) into OUT
ifeq ($(strip $(MOVIES)),)
	@bash scripts/ensure_demo_footage.sh
	$(VENV)/bin/muss-builder demo --out "$(OUT)" --config "$(CONFIG)" --executor $(EXECUTOR)
else
	$(VENV)/bin/muss-builder build $(MOVIES) --out "$(OUT)" --config "$(CONFIG)" --executor $(EXECUTOR)
endif

test: venv ffmpeg ## run ruff and the test suite
	@bash scripts/ensure_demo_footage.sh  # the shot benchmark's tests build films from it
	@bash scripts/ensure_chromium.sh >/dev/null  # the report's test renders it headless
	$(VENV)/bin/ruff check muss_builder tests benchmarks
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: venv ## ruff check and format check
	$(VENV)/bin/ruff check muss_builder tests benchmarks
	$(VENV)/bin/ruff format --check muss_builder tests benchmarks

format: venv ## ruff format
	$(VENV)/bin/ruff format muss_builder tests benchmarks

clean: ## remove the venv and build outputs
	rm -rf $(VENV) $(OUT) .pytest_cache
