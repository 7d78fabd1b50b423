# Everything a fresh machine needs is installed from here: uv, then a .venv with exactly what uv.lock pins.
SHELL := /bin/bash
# Lambda runs Python 3.12: use it when the machine has one (pyenv keeps it off PATH), else python3.
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
NEED_PYTHON = @test -n "$(PYTHON)" || { echo "Python 3.12+ is required and none was found (python3.12, pyenv, python3):" \
	"install one, or name it: make PYTHON=/path/to/python3.12"; exit 1; }
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The installer, bootstrapped with pip into a venv of its own at this version (make UV_VERSION=... to move it).
UV_VERSION := 0.13.9
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_STAMP := $(UV_VENV)/.installed-$(UV_VERSION)
# uv never downloads a Python of its own: the one PYTHON names is used. It reads the default index (pypi.org,
# which uv.lock records) and no pip configuration: a machine's local mirrors stay out of the lock.
export UV_PYTHON_DOWNLOADS := never
# What the Lambda layer installs (layers/deps/requirements.txt): [project].dependencies as locked, minus
# what the Lambda Python runtime already provides.
LAYER_EXPORT = $(UV) export --frozen --no-default-groups --no-emit-project --no-header \
	--no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer
export SAM_CLI_TELEMETRY := 0

.PHONY: install lock demo serve test soak unit lint bench mutate clean docs docs-build

include iac.mk

$(UV_STAMP):
	$(NEED_PYTHON)
	rm -rf $(UV_VENV)
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# --locked: installs exactly uv.lock (hashes checked), and stops if pyproject.toml has moved on without it.
$(STAMP): pyproject.toml uv.lock $(UV_STAMP)
	$(NEED_PYTHON)
	$(UV) sync --locked --quiet --python $(PYTHON)
	touch $(STAMP)

install: $(STAMP)

# Pins again what pyproject.toml allows (UPGRADE=1: every package to its newest allowed version) and exports
# the layer's requirements from the lock.
lock: $(UV_STAMP)
	$(UV) lock $(if $(filter 1,$(UPGRADE)),--upgrade) $(if $(PYTHON),--python $(PYTHON))
	$(LAYER_EXPORT) --output-file layers/deps/requirements.txt --quiet

demo: $(STAMP)
	$(BIN)/reframe demo

serve: $(STAMP)
	$(BIN)/reframe serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@$(LAYER_EXPORT) | diff -u layers/deps/requirements.txt - \
		|| { echo "layers/deps/requirements.txt is not the lock's export: run make lock"; exit 1; }

test: lint docs-build iac-install
	$(BIN)/python -m pytest -n 2 --durations=10

# The soak test alone (also part of `make test`): about a minute.
soak: $(STAMP)
	$(BIN)/python -m pytest tests/e2e/test_soak.py -m soak -q

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
MUTATE_ALL ?=

mutate: $(STAMP)
	$(UV) sync --locked --quiet --python $(PYTHON) --group mutation
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
	rm -rf $(VENV) $(IAC_VENV) $(UV_VENV) .aws-sam demo-output .pytest_cache .mypy_cache .ruff_cache
