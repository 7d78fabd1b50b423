# Infrastructure-as-code targets, included by the main Makefile (`include iac.mk`).
#
# aws-sam-cli, checkov and cfn-lint pin versions that clash with the application's own
# dependencies, so they live in a venv of their own, .venv-iac, installed once (stamp file).
# `make iac-install` reaches PyPI once; after it the checks and tests run offline. `make sam-build`
# builds the layer with pip, so it needs a package index too. The layer installs exactly what uv.lock pins
# (layers/deps/requirements.txt, exported by `make lock`, with hashes).
#
#   make iac-install   the .venv-iac tools plus a wheelhouse for offline layer builds in tests
#   make iac-check     cfn-lint, sam validate --lint, checkov on template.yaml
#   make sam-build     sam build into .aws-sam (arm64; LAMBDA_ARCH=x86_64 to switch)
#   make iac-test      the tests in tests/iac (linters, wiring, built artifact run on moto)

# The main Makefile's choice (make PYTHON=/path/to/python3.12 names one for both).
IAC_PYTHON ?= $(PYTHON)
IAC_VENV := .venv-iac
IAC_BIN := $(IAC_VENV)/bin
IAC_STAMP := $(IAC_VENV)/.installed
IAC_TOOLS := aws-sam-cli checkov cfn-lint
# Lambda architecture for sam-build: the template's Architecture parameter and the layer
# makefile's ARCH (environment) must agree, so both are set from this one variable.
LAMBDA_ARCH ?= arm64
# Wheels for the build machine's architecture, so tests can build a layer that imports here
# without reaching a package index (see tests/iac/conftest.py).
IAC_HOST_ARCH := $(shell uname -m | sed -e 's/^aarch64$$/arm64/' -e 's/^amd64$$/x86_64/')
IAC_WHEELHOUSE := $(IAC_VENV)/wheelhouse-$(IAC_HOST_ARCH)
IAC_PLATFORM_ARCH := $(if $(filter arm64,$(IAC_HOST_ARCH)),aarch64,x86_64)
IAC_ENV := SAM_CLI_TELEMETRY=0 CKV_SKIP_PACKAGE_UPDATE_CHECK=true AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}

.PHONY: iac-install iac-check sam-build iac-test

$(IAC_STAMP): layers/deps/requirements.txt uv.lock $(UV_STAMP)
	@test -n "$(IAC_PYTHON)" || { echo "Python 3.12+ is required for $(IAC_VENV)"; exit 1; }
	test -x $(IAC_BIN)/python || $(IAC_PYTHON) -m venv $(IAC_VENV)
	$(IAC_BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(IAC_BIN)/pip install -q --disable-pip-version-check $(IAC_TOOLS)
	rm -rf $(IAC_WHEELHOUSE) && mkdir -p $(IAC_WHEELHOUSE)
	# The runtime set as locked, boto3 and botocore included: the tests install them as the runtime's stand-in.
	$(UV) export --frozen --no-default-groups --no-emit-project --no-header --quiet \
		--output-file $(IAC_WHEELHOUSE)/runtime-requirements.txt
	$(IAC_BIN)/pip download -q --disable-pip-version-check --dest $(IAC_WHEELHOUSE) --no-deps \
		--platform manylinux_2_28_$(IAC_PLATFORM_ARCH) --platform manylinux2014_$(IAC_PLATFORM_ARCH) \
		--implementation cp --python-version 3.12 --only-binary=:all: \
		-r $(IAC_WHEELHOUSE)/runtime-requirements.txt
	touch $(IAC_STAMP)

iac-install: $(IAC_STAMP)

iac-check: $(IAC_STAMP)
	$(IAC_BIN)/cfn-lint template.yaml
	$(IAC_ENV) $(IAC_BIN)/sam validate --lint --template template.yaml
	$(IAC_ENV) $(IAC_BIN)/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

sam-build: $(IAC_STAMP)
	ARCH=$(LAMBDA_ARCH) PYTHON=$(CURDIR)/$(IAC_BIN)/python $(IAC_ENV) $(IAC_BIN)/sam build --template template.yaml --build-dir .aws-sam/build \
		--parameter-overrides Architecture=$(LAMBDA_ARCH)

iac-test: $(IAC_STAMP)
	$(BIN)/python -m pytest tests/iac -q --durations=10
