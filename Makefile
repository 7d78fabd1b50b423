# Everything a fresh machine needs is installed from here: a .venv and packages from PyPI.
SHELL := /bin/bash
# Lambda runs Python 3.12: use it when the machine has one (pyenv keeps it off PATH), else python3.
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0

.PHONY: install demo serve test unit lint bench mutate clean docs docs-build

include iac.mk

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12+ is required and none was found (python3.12, pyenv, python3):" \
		"install one, or name it: make PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/reframe demo

serve: $(STAMP)
	$(BIN)/reframe serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint docs-build iac-install
	$(BIN)/python -m pytest -n 2 --durations=10

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

# The docs site (mkdocs.yml, docs/): served on 127.0.0.1 while writing, built with --strict by `make test`
# so a broken link, an anchor that is gone or a page missing from the nav fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Mutation testing against tests/unit (docs/mutation.md); not part of `make test`. In a copy of the project
# (build/mutation) where the package lies at src/: mutmut then names mutants by the module the tests import.
# By default the modules that hold the rules (pyproject's [tool.mutmut] only_mutate: the application layer,
# planning, the sidecar, the manifest); MUTATE_ALL=1 mutates the domain and application layers whole.
MUTATION_DIR := build/mutation
MUTATION_STAMP := $(VENV)/.mutation-installed
MUTATE_ALL ?=

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,mutation]'
	touch $@

mutate: $(MUTATION_STAMP)
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)/src
	cp -r functions/reframe/reframe_pipeline $(MUTATION_DIR)/src/
	cp -r functions tests docs events examples schemas README.md template.yaml pyproject.toml $(MUTATION_DIR)/
	find $(MUTATION_DIR) -name __pycache__ -prune -exec rm -rf {} +
ifeq ($(MUTATE_ALL),1)
	sed -i 's|^only_mutate = .*|only_mutate = ["src/reframe_pipeline/domain/*", "src/reframe_pipeline/application/*"]|' \
		$(MUTATION_DIR)/pyproject.toml
endif
	@cd $(MUTATION_DIR) && start=$$SECONDS && \
		{ PATH="$(CURDIR)/$(BIN):$$PATH" mutmut run > mutmut-run.log 2>&1 || \
			{ tail -n 40 mutmut-run.log; exit 1; }; } && \
		$(CURDIR)/$(BIN)/python $(CURDIR)/tests/unit/mutation_report.py && \
		echo "mutmut run: $$((SECONDS - start)) s (log: $(MUTATION_DIR)/mutmut-run.log)"

# The commit before notices and provenance (issue 13): the cold start with both features off is compared with it.
BENCH_BASELINE ?= 772bd77

bench: $(STAMP)
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.features $(addprefix --baseline ,$(BENCH_BASELINE))

clean:
	rm -rf $(VENV) $(IAC_VENV) .aws-sam demo-output .pytest_cache .mypy_cache .ruff_cache
