# callvault: everything a fresh clone needs, from Python >= 3.11 and make alone.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
CHECKOV_VERSION := 3.3.30
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen --no-sync
export UV_PYTHON_DOWNLOADS := never
export SAM_CLI_TELEMETRY := 0

# `sam build` packages the layer for arm64 with python3.13, from PATH (pyenv's 3.13 first, where present).
PY313_BIN := $(shell ls -d $$HOME/.pyenv/versions/3.13*/bin 2>/dev/null | tail -1)
SAM_PATH := PATH="$(if $(PY313_BIN),$(PY313_BIN):)$$PATH"
# The layer's wheels, for this machine and for Lambda's arm64: the deploy test's `sam build` installs
# from here with no network (tests/e2e/test_sam_deploy.py).
WHEELHOUSE := $(TOOLS)/wheelhouse
LAYER_REQUIREMENTS := layers/callvault/requirements.txt layers/analytics/requirements.txt

PORT ?= 3000
MOTO_PORT ?= 5000

.PHONY: chromium dev soak openapi event-schemas install wheelhouse test lint typecheck security unit integration infrastructure build bench events clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set, each `callvault` run would compile boto3,
# sqlglot... again, half of `callvault sql`'s time (bench/sql_freshness.py).
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --compile-bytecode
	@touch $@

install: .venv/.synced

$(WHEELHOUSE)/.ready: $(LAYER_REQUIREMENTS)
	rm -rf $(WHEELHOUSE)
	$(SAM_PATH) python3.13 -m pip download --quiet --only-binary=:all: --dest $(WHEELHOUSE) $(addprefix -r ,$(LAYER_REQUIREMENTS))
	$(SAM_PATH) python3.13 -m pip download --quiet --only-binary=:all: --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
		--implementation cp --python-version 3.13 --abi cp313 --dest $(WHEELHOUSE) $(addprefix -r ,$(LAYER_REQUIREMENTS))
	@touch $@

wheelhouse: $(WHEELHOUSE)/.ready

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) python -m callvault_local.layering

typecheck: install
	$(RUN) mypy

# checkov runs in its own environment: its pins clash with aws-sam-cli's. --skip-download keeps it offline.
# It does not know Fn::ForEach, so it checks the resources in the template expanded (each written
# out, with its skips), and fails if it parsed nothing; it looks for secrets in the template as written.
CHECKOV := $(UV) tool run --from "checkov==$(CHECKOV_VERSION)" checkov --quiet --compact --skip-download
security: install
	$(RUN) bandit -q -c pyproject.toml -r layers functions src
	@mkdir -p .aws-sam && $(RUN) python -m callvault_local.template > .aws-sam/template.expanded.json
	$(CHECKOV) --framework cloudformation -f .aws-sam/template.expanded.json -o cli -o json --output-file-path console,.aws-sam/checkov.json
	$(RUN) python -c 'import json, sys; s = json.load(open(".aws-sam/checkov.json"))["summary"]; \
		sys.exit(f"checkov checked nothing: {s}" if s["parsing_errors"] or not s["passed"] else None)'
	$(CHECKOV) --framework secrets -f template.yaml

# Headless Chromium for the call browser's tests (tests/e2e/test_call_browser.py): Debian's package,
# as browsers cannot be downloaded here (never `playwright install`). Without root, say how.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
		else \
			echo "make: $(CHROMIUM) is missing and this is not root: run 'sudo apt-get install -y chromium' (the call browser's tests are skipped without it, and fail in CI)" >&2; \
		fi; \
	fi

test: lint typecheck security wheelhouse chromium
	$(RUN) pytest -n 2 -q

unit integration infrastructure: install
	$(RUN) pytest -q tests/$@

build: install
	$(SAM_PATH) $(RUN) sam build

# The stack on loopback (moto on MOTO_PORT, the API on PORT) until Ctrl-C.
dev: install
	$(RUN) callvault dev --port $(PORT) --moto-port $(MOTO_PORT)

# The load-and-fault harness: 10,000+ webhooks, 16 senders, faults injected, 30% of the pull vendors'
# webhooks dropped and recovered by reconcile; exits non-zero unless the ledger balances.
soak: install
	$(RUN) python -m callvault_local.soak --webhooks 10000 --senders 16 --drop 0.3

# docs/openapi.json from the code (routes from the template, the read API's resolver, webhook reply types).
openapi: install
	$(RUN) python -m callvault_local.openapi

# docs/events/*.json from the models of the events put on the bus (callvault/outbound.py).
event-schemas: install
	$(RUN) python -m callvault_local.event_schemas

events: install
	$(RUN) python -m callvault_local.sample_events --moto-port $(MOTO_PORT)

bench: install
	$(RUN) python -m bench.ingest
	$(RUN) python -m bench.listing
	$(RUN) python -m bench.recordings
	$(RUN) python -m bench.failing_recording
	$(RUN) python -m bench.interrupted_recording
	$(RUN) python -m bench.write_cost
	$(RUN) python -m bench.elevenlabs_audio
	$(RUN) python -m bench.elevenlabs_long_call
	$(RUN) python -m bench.listing_times
	$(RUN) python -m bench.erasure
	$(RUN) python -m bench.reconcile
	$(RUN) python -m bench.call_browser
	$(RUN) python -m bench.events_out
	$(RUN) python -m bench.analytics
	$(RUN) python -m bench.call_metrics
	$(RUN) python -m bench.sql_freshness

clean:
	rm -rf .venv $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
