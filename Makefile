# tweetlens: `make demo` runs the main job, `make test` runs every check. Both create the
# virtual environment first, so a fresh clone needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12: the venv and `sam build` use the same interpreter.
PYTHON312 ?= $(shell for p in $$(command -v python3.12) $(HOME)/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$p"; break; }; done)
# Sub-makes (make test) must use the same interpreter, not the venv's python3.12 on PATH.
export PYTHON312
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# sam build looks for `python3.12` on PATH: the venv provides it.
export PATH := $(BIN):$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1
# Never let a developer's real AWS credentials reach the local cloud or the tests.
export AWS_ACCESS_KEY_ID := testing
export AWS_SECRET_ACCESS_KEY := testing
export SAM_CLI_TELEMETRY := 0

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml functions/requirements.txt
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (install it, or set PYTHON312=/path/to/python3.12)" >&2; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r functions/requirements.txt -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create the virtual environment (.venv) with every pinned dependency

.PHONY: demo
demo: $(STAMP) ## Run the whole pipeline on the local cloud and print the results
	$(BIN)/tweetlens demo

.PHONY: lint
lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: check-template
check-template: $(STAMP) ## sam validate --lint, cfn-lint and statelint
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml
	$(BIN)/statelint statemachine/classify_image.asl.json
	$(BIN)/sam validate --lint --template tweetlens/bench/baseline/template.yaml
	$(BIN)/cfn-lint tweetlens/bench/baseline/template.yaml

# Security scanners. checkov pins a boto3 older than ours, so it gets a venv of its own;
# cfn-guard is the static binary shipped inside an npm package (no download at run time).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CFN_GUARD_NPM := @cdklabs/cdk-validator-cfnguard@0.0.62
CFN_GUARD_DIR := .cfn-guard
CFN_GUARD_OS := $(if $(filter Darwin,$(shell uname -s)),macos,ubuntu)
CFN_GUARD_ARCH := $(if $(filter arm64 aarch64,$(shell uname -m)),aarch64,x86_64)
CFN_GUARD := $(CFN_GUARD_DIR)/node_modules/@cdklabs/cdk-validator-cfnguard/bin/$(CFN_GUARD_OS)/$(CFN_GUARD_ARCH)/cfn-guard
# The scanners also read the CloudFormation that `sam deploy` creates (roles, mappings).
CFN_TEMPLATE := .aws-sam/security/template.cfn.json

$(CHECKOV_STAMP):
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (install it, or set PYTHON312=/path/to/python3.12)" >&2; exit 1; }
	$(PYTHON312) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $@

# --legacy-peer-deps: the package's peer aws-cdk-lib serves its CDK plugin, not the binary.
$(CFN_GUARD):
	@command -v npm >/dev/null || { echo "npm not found: it installs cfn-guard" >&2; exit 1; }
	npm install --prefix $(CFN_GUARD_DIR) --no-save --no-audit --no-fund --ignore-scripts \
		--legacy-peer-deps $(CFN_GUARD_NPM)
	@test -x $@ || { echo "$(CFN_GUARD_NPM) has no cfn-guard for $(CFN_GUARD_OS)/$(CFN_GUARD_ARCH)" >&2; exit 1; }
	@touch $@

$(CFN_TEMPLATE): template.yaml guard/render_template.py $(STAMP)
	$(BIN)/python guard/render_template.py template.yaml $@

.PHONY: security
security: $(CHECKOV_STAMP) $(CFN_GUARD) $(CFN_TEMPLATE) ## checkov and cfn-guard (guard/tweetlens.guard) on the template and its transform
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file $(CFN_TEMPLATE)
	$(CFN_GUARD) test --rules-file guard/tweetlens.guard --test-data guard/tweetlens_tests.yaml
	$(CFN_GUARD) validate --rules guard/tweetlens.guard --data template.yaml --data $(CFN_TEMPLATE) --show-summary all

# Every function has its own Metadata (its checkov skips and their reasons), so SAM builds the
# shared CodeUri once per function: --parallel runs those builds side by side, --cached skips
# the ones whose code and requirements have not changed since the last build.
.PHONY: build
build: $(STAMP) ## sam build (what `sam deploy` ships)
	$(BIN)/sam build --template template.yaml --build-dir .aws-sam/build --cached --parallel

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests: no network at all
	$(BIN)/pytest tests/unit --disable-socket --allow-unix-socket

# The local-cloud tests mostly wait (on queues, executions, idle checks: tests/integration
# took 299 s of wall time for 72 s of CPU), so `make test` runs them as two halves side by
# side, each in its own process (one local cloud per process), with the CPU-bound unit tests
# ahead of the second half. The halves are balanced on measured wall time (A against the unit
# tests plus B: docs/test-speed.md); tests/cli moved to A once the batching-window scale had
# taken about a minute off A.
INTEGRATION_A := tests/integration tests/local tests/chaos tests/cli
INTEGRATION_B := tests/localcloud tests/bench
PYTEST_LOOPBACK := --allow-hosts=127.0.0.1,::1,localhost -m "not slow"

.PHONY: test-integration
test-integration: $(STAMP) ## The local cloud and the deployed template, loopback only
	$(BIN)/pytest $(INTEGRATION_A) $(INTEGRATION_B) $(PYTEST_LOOPBACK)

.PHONY: test-integration-a test-integration-b
test-integration-a: $(STAMP) ## First half of test-integration (make test runs the halves side by side)
	$(BIN)/pytest $(INTEGRATION_A) $(PYTEST_LOOPBACK)

test-integration-b: $(STAMP) ## Second half of test-integration
	$(BIN)/pytest $(INTEGRATION_B) $(PYTEST_LOOPBACK)

.PHONY: test-slow
test-slow: $(STAMP) ## Tests of up to about 8 minutes (the 40-post EXPRESS chaos run), loopback only
	$(BIN)/pytest tests/chaos --allow-hosts=127.0.0.1,::1,localhost -m slow

# The browser tests drive Debian's chromium through its chromedriver. Installed with apt-get
# (as root, or through sudo) only when missing; CHROMIUM/CHROMEDRIVER point at other builds.
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
export CHROMIUM CHROMEDRIVER

.PHONY: browser
browser: ## Headless chromium + chromedriver for the browser tests (apt-get, only if missing)
	@if [ -x "$(CHROMIUM)" ] && [ -x "$(CHROMEDRIVER)" ]; then \
		echo "chromium and chromedriver present: $(CHROMIUM), $(CHROMEDRIVER)"; \
	else \
		command -v apt-get >/dev/null || { echo "no apt-get: install chromium and chromedriver, then set CHROMIUM= and CHROMEDRIVER=" >&2; exit 1; }; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium chromium-driver; \
	fi

.PHONY: test-browser
test-browser: $(STAMP) browser ## The web console and the demo report in headless chromium
	$(BIN)/pytest tests/browser --allow-hosts=127.0.0.1,::1,localhost

.PHONY: screenshots
screenshots: $(STAMP) browser ## Screenshots of the console from a real run (docs/images/console-*.png)
	$(BIN)/python -m tests.browser.screenshots docs/images

.PHONY: bench
bench: $(STAMP) ## Benchmark baseline, STANDARD and EXPRESS on the local cloud (out/bench.json, out/bench.png)
	$(BIN)/tweetlens bench $(BENCH_ARGS)

# Two at a time on two cores: the static checks and the build together, then the first half
# of the local-cloud tests beside the unit tests followed by the second half (make starts the
# goals in the order given, the third when a slot frees), then the browser tests.
# --output-sync keeps each target's output in one piece. `make test PARALLEL=` runs everything
# one after the other (a loaded machine: the local cloud's task timeouts).
PARALLEL ?= --no-print-directory -j2 --output-sync=target

.PHONY: checks
checks: lint check-template security build ## lint, template checks, scanners and sam build

.PHONY: test
test: $(STAMP) ## Everything CI runs
	$(MAKE) $(PARALLEL) checks
	$(MAKE) $(PARALLEL) test-integration-a test-unit test-integration-b
	$(MAKE) --no-print-directory test-browser

.PHONY: clean
clean: ## Remove the venv and build output
	rm -rf $(VENV) .venv-checkov .cfn-guard .aws-sam .pytest_cache .mypy_cache .ruff_cache out .tweetlens
