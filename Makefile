# grafana-ha-operator: build, lint, tests and a local demo on a real (local) control
# plane. See testbed/README.md for what the test bed is made of.
#
#   make test   everything CI runs: tools, venv, lint, unit, fault-proxy self-test, e2e
#   make demo   local control plane + moto, the operator, and the example GrafanaCluster

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# `make test` must stop at the first failing step, in this order, even under -j.
.NOTPARALLEL:

CARGO ?= cargo
# Where testbed-up/testbed-down/demo keep the bed's state (git-ignored).
STATE_DIR ?= .testbed
VENV_PYTHON := .venv/bin/python

.PHONY: help tools venv testbed-up testbed-down crds lint lint-testbed unit e2e bench \
	fault-proxy-test test demo clean-testbed

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

tools: ## build etcd, kube-*, kubectl, kwok, helm into the cache (once per version)
	testbed/build-tools.sh

venv: ## create .venv with moto and boto3 at the pinned versions
	testbed/venv.sh

testbed-up: tools venv ## start the test bed in $(STATE_DIR) (then: . $(STATE_DIR)/env)
	testbed/up.sh $(STATE_DIR)
	@echo "now: . $(STATE_DIR)/env && kubectl get nodes"

testbed-down: ## stop the test bed in $(STATE_DIR)
	testbed/down.sh $(STATE_DIR)

crds: ## regenerate crds/grafanacluster.yaml from the Rust types
	mkdir -p crds
	$(CARGO) run --quiet -- crd > crds/grafanacluster.yaml.tmp
	mv crds/grafanacluster.yaml.tmp crds/grafanacluster.yaml

lint: lint-testbed ## rustfmt, clippy (warnings are errors), shellcheck, python syntax
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# shellcheck is optional locally (it is skipped with a note), .ci/run installs it.
lint-testbed:
	@if command -v shellcheck >/dev/null; then \
		shellcheck -x testbed/*.sh .ci/run; \
	else \
		echo "shellcheck not installed; skipping shell lint (apt-get install shellcheck)"; \
	fi
	python3 -m py_compile testbed/fault_proxy.py testbed/fault_proxy_selftest.py testbed/seed_aws.py

unit: ## unit tests (no cluster)
	$(CARGO) test --lib --bins

fault-proxy-test: venv ## self-test of testbed/fault_proxy.py against moto with boto3
	$(VENV_PYTHON) testbed/fault_proxy_selftest.py

# The tests are compiled first, so the bed does not idle through the build.
e2e: tools venv ## integration tests in tests/ against a fresh test bed
	$(CARGO) test --no-run --test '*'
	testbed/with-testbed.sh $(CARGO) test --no-fail-fast --test '*' -- --test-threads=1

test: tools venv lint unit fault-proxy-test e2e ## all of the above, stopping at the first failure

demo: tools venv ## test bed in $(STATE_DIR) + seeded AWS + operator + example; Ctrl-C stops it all
	testbed/demo.sh $(STATE_DIR)

clean-testbed: testbed-down ## stop the bed and remove $(STATE_DIR)
	rm -rf $(STATE_DIR)

bench: tools venv ## scale benchmark: many GrafanaClusters, foreign Secrets; prints figures
	$(CARGO) test --release --no-run --test bench_scale
	testbed/with-testbed.sh $(CARGO) test --release --test bench_scale -- --ignored --nocapture
