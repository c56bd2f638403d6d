# FinanceLake: `make up` starts the stack, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := $(HOME)/.cache/financelake
TOOLS := $(CACHE)/bin
UV_VERSION := 0.13.9
GRPCURL_VERSION := v1.9.3
JAEGER_VERSION := v1.76.0
HELM_VERSION := v3.22.0
TOFU_VERSION := v1.10.7
CHECKOV_VERSION := 3.3.30
# checkov lives in its own venv (its pins would replace some of ours), keyed by its lock.
CHECKOV_ENV := $(CACHE)/checkov-$(shell md5sum < requirements.checkov.lock | cut -c1-12)

export PATH := $(abspath $(BIN)):$(abspath node_modules/.bin):$(TOOLS):$(PATH)

# The strict editable install links each file; it is redone when the set of files changes,
# and when a C source changes (the install compiles it).
PKG_FILES_HASH := $(shell find services stream models gateway observability gen/python gen/client \( -name '*.py' -o -name '*.pyi' -o -name py.typed -o -name '*.c' \) 2>/dev/null | sort | md5sum | cut -c1-12)
C_SOURCES := $(shell find stream -name '*.c' 2>/dev/null)

.PHONY: help up down status test lint lock gen check-gen python-env node-env web browser tools jaeger kafka-jars clean \
	bench-ingest bench-stream bench-marketdata bench-predict bench-gateway

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

# ---- environments ---------------------------------------------------------------------
$(BIN)/uv:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.deps-installed: requirements.lock $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	@rm -f $(VENV)/.pkg-*
	@touch $@

$(VENV)/.pkg-$(PKG_FILES_HASH): $(VENV)/.deps-installed pyproject.toml setup.py $(C_SOURCES)
	@rm -f $(VENV)/.pkg-*
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . -C editable_mode=strict
	@touch $@

python-env: $(VENV)/.pkg-$(PKG_FILES_HASH)  ## Create .venv with the locked dependencies and financelake

# The runtime lock (the container image's) is resolved within the full one: same versions.
lock: $(BIN)/uv  ## Re-resolve requirements.lock (with dev tools) and requirements.runtime.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev -p 3.11 -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml -p 3.11 -c requirements.lock -o requirements.runtime.lock
	echo "checkov==$(CHECKOV_VERSION)" | $(BIN)/uv pip compile --quiet - -p 3.11 -o requirements.checkov.lock

node_modules/.installed: package.json package-lock.json services/web/package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-env: node_modules/.installed  ## buf, protoc-gen-es and the UI's packages, pinned in package-lock.json

# The UI is rebuilt when its sources or the generated TypeScript change; Envoy serves dist/.
WEB_SOURCES := $(shell find services/web/src services/web/index.html services/web/vite.config.ts services/web/tsconfig.json gen/ts -type f 2>/dev/null)

services/web/dist/index.html: node_modules/.installed $(WEB_SOURCES)
	npm --workspace services/web run build --silent

web: services/web/dist/index.html  ## Build the UI (services/web) into services/web/dist

# End-to-end tests drive Debian's Chromium (playwright-core cannot download a browser here).
/usr/bin/chromium:
	@command -v apt-get >/dev/null || { echo "Chromium is required at /usr/bin/chromium for the browser tests"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

browser: /usr/bin/chromium  ## Install Chromium for the UI's end-to-end tests

$(TOOLS)/grpcurl:
	@command -v go >/dev/null || { echo "Go is required to build grpcurl (the interop test client): install Go 1.22+"; exit 1; }
	GOBIN=$(TOOLS) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

# Jaeger v2 (the OTLP trace store and query API the UI's trace view reads). Its go.mod has
# replace directives, which `go install pkg@version` refuses: it is built as a tool of a
# throwaway module instead.
$(TOOLS)/jaeger:
	@command -v go >/dev/null || { echo "Go is required to build Jaeger: install Go 1.24+"; exit 1; }
	rm -rf $(CACHE)/jaeger-build && mkdir -p $(CACHE)/jaeger-build $(TOOLS)
	cd $(CACHE)/jaeger-build && go mod init financelake-jaeger >/dev/null 2>&1 \
		&& go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@$(JAEGER_VERSION) \
		&& go build -o $(abspath $(TOOLS))/jaeger github.com/jaegertracing/jaeger/cmd/jaeger
	rm -rf $(CACHE)/jaeger-build

jaeger: $(TOOLS)/jaeger  ## Build Jaeger v2 from its Go module into ~/.cache/financelake/bin

# Helm, for the chart's lint and template checks in the suite.
$(TOOLS)/helm:
	@command -v go >/dev/null || { echo "Go is required to build helm: install Go 1.24+"; exit 1; }
	GOBIN=$(TOOLS) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# OpenTofu, for `tofu fmt -check` of terraform/. Its go.mod's replace directives must apply,
# so it is built inside its downloaded module.
$(TOOLS)/tofu:
	@command -v go >/dev/null || { echo "Go is required to build tofu: install Go 1.24+"; exit 1; }
	module=$$(go mod download -json github.com/opentofu/opentofu@$(TOFU_VERSION) \
		| $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') \
		&& cd "$$module" && go build -o $(abspath $(TOOLS))/tofu ./cmd/tofu

# checkov, for the chart's rendered manifests and terraform/ in the suite.
$(CHECKOV_ENV)/bin/checkov: | $(BIN)/uv
	$(BIN)/uv venv --quiet --python $(PYTHON) $(CHECKOV_ENV)
	$(BIN)/uv pip sync --quiet --python $(CHECKOV_ENV)/bin/python requirements.checkov.lock

tools: $(TOOLS)/grpcurl $(TOOLS)/jaeger $(TOOLS)/helm $(TOOLS)/tofu $(CHECKOV_ENV)/bin/checkov  ## Tools the suite runs, cached in ~/.cache/financelake

kafka-jars: python-env  ## Resolve the pinned Kafka release from Maven Central into the cache
	$(BIN)/financelake kafka provision

# ---- the two commands -----------------------------------------------------------------
up: python-env web $(if $(filter true,$(FINANCELAKE_TRACING__ENABLED)),jaeger)  ## Start Kafka and every server; Ctrl-C or `make down` stops them
	$(BIN)/financelake up

down: python-env  ## Stop everything `make up` started
	$(BIN)/financelake down

status: python-env  ## Show what is running and healthy
	$(BIN)/financelake status

test: python-env node-env web browser tools kafka-jars lint  ## Lint, the UI's unit tests, then the whole suite on a real broker
	npm --workspace services/web run test --silent
	$(BIN)/pytest

# ---- benchmarks (BENCHMARKS.md) ----------------------------------------------------------
bench-ingest: python-env kafka-jars  ## Ingestion throughput and latency on a private broker
	$(BIN)/python -m tests.bench.ingest

bench-stream: python-env kafka-jars  ## Stream worker: ticks into bronze, freshness, bar latency
	$(BIN)/python -m tests.bench.stream

bench-marketdata: python-env kafka-jars  ## Market data: GetBars of a lake year, GetQuote, WatchBars
	$(BIN)/python -m tests.bench.marketdata

bench-predict: python-env  ## Prediction: Predict latency and throughput, OIP ModelInfer, the ONNX Runtime limit
	$(BIN)/python -m tests.bench.predict

bench-gateway: python-env web kafka-jars  ## Gateway: GetQuote direct vs grpc-web vs REST through Envoy
	$(BIN)/python -m tests.bench.gateway

# ---- contracts and code generation ----------------------------------------------------
gen: python-env node-env  ## Regenerate gen/ from proto/
	$(BIN)/python -m financelake.services.codegen generate

lint: python-env node-env  ## ruff, mypy, buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m financelake.services.codegen protodeps
	buf lint
	$(BIN)/mypy -p financelake.services -p financelake.stream -p financelake.models -p financelake.gateway -p financelake.observability
	$(BIN)/mypy tests
	npm --workspace services/web run typecheck --silent

clean:  ## Remove the venv, node_modules and generated build folders (not the caches)
	rm -rf $(VENV) node_modules build .build services/web/dist
