# tweetlens: `make demo` runs the main job, `make test` runs every check. Both create the
# virtual environment first, so a fresh clone needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12: the venv and `sam build` use the same interpreter.
PYTHON312 ?= $(shell command -v python3.12 2>/dev/null || ls -d $(HOME)/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1)
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

.PHONY: build
build: $(STAMP) ## sam build (what `sam deploy` ships)
	$(BIN)/sam build --template template.yaml --build-dir .aws-sam/build

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests: no network at all
	$(BIN)/pytest tests/unit --disable-socket --allow-unix-socket

.PHONY: test-integration
test-integration: $(STAMP) ## The local cloud and the deployed template, loopback only
	$(BIN)/pytest tests/local tests/localcloud tests/integration tests/cli --allow-hosts=127.0.0.1,::1,localhost

.PHONY: test
test: lint check-template build test-unit test-integration ## Everything CI runs

.PHONY: clean
clean: ## Remove the venv and build output
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache out
