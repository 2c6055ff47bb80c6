# grafana-ha-operator: build, lint, tests and a local demo on a real (local) control
# plane. See testbed/README.md for what the test bed is made of.
#
#   make test   everything CI runs: tools, venv, lint, unit, fault-proxy self-test, the
#               wiring probe's self-test, e2e, chart-test, and the Dockerfile's release
#               build (image-check)
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

.PHONY: help system-deps tools venv testbed-up testbed-down crds lint lint-testbed unit e2e bench supply-chain fuzz \
	fault-proxy-test probe probe-selftest test demo clean-testbed

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

system-deps: ## install the Debian packages the tests need (lua, shellcheck, openssl...) when missing
	testbed/system-deps.sh

tools: system-deps ## build etcd, kube-*, kubectl, kwok, helm into the cache (once per version)
	testbed/build-tools.sh

venv: ## create .venv with moto and boto3 at the pinned versions
	testbed/venv.sh

testbed-up: tools venv ## start the test bed in $(STATE_DIR) (then: . $(STATE_DIR)/env)
	testbed/up.sh $(STATE_DIR)
	@echo "now: . $(STATE_DIR)/env && kubectl get nodes"

testbed-down: ## stop the test bed in $(STATE_DIR)
	testbed/down.sh $(STATE_DIR)

crds: tools ## regenerate crds/grafanacluster.yaml from the Rust types (and deploy/'s copies)
	mkdir -p crds
	$(CARGO) run --quiet -- crd > crds/grafanacluster.yaml.tmp
	mv crds/grafanacluster.yaml.tmp crds/grafanacluster.yaml
	deploy/generate.sh

lint: lint-testbed lint-deploy supply-chain ## rustfmt, clippy (warnings are errors), shellcheck, python syntax, deploy/ drift, cargo deny
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# shellcheck is optional locally (it is skipped with a note), .ci/run installs it.
lint-testbed:
	@if command -v shellcheck >/dev/null; then \
		shellcheck -x testbed/*.sh testbed/services/*.sh testbed/probe/*.sh .ci/run; \
	else \
		echo "shellcheck not installed; skipping shell lint (apt-get install shellcheck)"; \
	fi
	python3 -m py_compile testbed/fault_proxy.py testbed/fault_proxy_selftest.py testbed/seed_aws.py \
		testbed/vulndb_index.py testbed/govulncheck_report.py
	@unformatted=$$(gofmt -l testbed/probe); \
		if [[ -n $$unformatted ]]; then echo "gofmt: $$unformatted"; exit 1; fi

# Supply chain (issue 12; the policy and why: deny.toml, docs/reliability.md):
# - cargo deny: licences, bans, sources (built once from crates.io into the tools cache).
# - RustSec advisories (cargo deny's; cargo audit reads the same database): the database
#   is a git repository on GitHub, unreachable from this project's machines and CI. It is
#   fetched first; when the fetch fails the check is skipped with a loud note and the
#   fetch's error, never a silent pass. REQUIRE_ADVISORIES=1 makes that skip an error
#   (for a machine that is expected to reach it). Advisories found fail the build.
# - govulncheck over the test bed's Go tools and the probe (testbed/govulncheck.sh), with
#   the database from the Go module proxy; needs the tools built, hence `tools`.
# The same cache as testbed/lib.sh's.
TOOLS_CACHE := $(or $(GRAFANA_HA_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/grafana-ha-operator)
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOLS_CACHE)/bin/cargo-deny-$(CARGO_DENY_VERSION)/bin/cargo-deny
supply-chain: tools ## cargo deny (licences, bans, sources; advisories where reachable), govulncheck on the bed's Go tools
	@if [[ ! -x $(CARGO_DENY) ]]; then \
		echo "building cargo-deny $(CARGO_DENY_VERSION) into the tools cache (once)"; \
		$(CARGO) install --locked --quiet --version $(CARGO_DENY_VERSION) cargo-deny \
			--root $(TOOLS_CACHE)/bin/cargo-deny-$(CARGO_DENY_VERSION) \
			--target-dir $(TOOLS_CACHE)/cargo-deny-build; \
		rm -rf $(TOOLS_CACHE)/cargo-deny-build; \
	fi
	$(CARGO_DENY) --log-level error check licenses bans sources
	@err=$$(mktemp); \
	if $(CARGO_DENY) --log-level error fetch db 2>"$$err"; then \
		rm -f "$$err"; \
		echo "cargo deny check advisories"; \
		$(CARGO_DENY) --log-level error check --disable-fetch advisories || exit 1; \
		if command -v cargo-audit >/dev/null; then \
			echo "cargo audit"; $(CARGO) audit --no-fetch || exit 1; \
		else \
			echo "cargo audit: not installed, skipped (cargo deny checked the same database)"; \
		fi; \
	else \
		echo "################################################################################"; \
		echo "## RUSTSEC ADVISORIES NOT CHECKED: the advisory database could not be fetched"; \
		sed 's/^/##   /' "$$err" | head -n 5; \
		echo "## (licences, bans and sources were checked; see deny.toml)"; \
		echo "################################################################################"; \
		rm -f "$$err"; \
		if [[ -n "$${REQUIRE_ADVISORIES:-}" ]]; then echo "REQUIRE_ADVISORIES is set: failing"; exit 1; fi; \
	fi
	testbed/govulncheck.sh

# The fuzz target (fuzz/, its own workspace) needs a nightly toolchain and cargo-fuzz;
# not part of `make test`. Runs FUZZ_SECONDS (default 600). No sanitizer: the operator
# has no unsafe code, so AddressSanitizer would look only inside dependencies, and its
# instrumented build of the whole tree (AWS SDK, kube) did not finish in 20 minutes on a
# shared 2-core machine; libFuzzer's coverage guidance and panics are what this target
# needs. Release, like the operator's build. New corpus entries stay in fuzz/corpus
# (ignored by git but for the committed examples). The dictionary (the CRD's field names
# and enum values) lets mutations produce specs that parse and reach resolve/build.
FUZZ_SECONDS ?= 600
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(TOOLS_CACHE)/bin/cargo-fuzz-$(CARGO_FUZZ_VERSION)/bin/cargo-fuzz
fuzz: ## cargo fuzz run spec_pipeline (release, no sanitizer) for FUZZ_SECONDS (needs rustup's nightly toolchain)
	@if [[ ! -x $(CARGO_FUZZ) ]]; then \
		$(CARGO) install --locked --quiet --version $(CARGO_FUZZ_VERSION) cargo-fuzz \
			--root $(TOOLS_CACHE)/bin/cargo-fuzz-$(CARGO_FUZZ_VERSION); \
	fi
	cd fuzz && PATH="$(dir $(CARGO_FUZZ)):$$PATH" cargo +nightly fuzz run spec_pipeline \
		--sanitizer none --release -- -max_total_time=$(FUZZ_SECONDS) \
		-dict=$(CURDIR)/fuzz/spec_pipeline.dict -print_final_stats=1

unit: ## unit tests (no cluster)
	$(CARGO) test --lib --bins

fault-proxy-test: venv ## self-test of testbed/fault_proxy.py against moto with boto3
	$(VENV_PYTHON) testbed/fault_proxy_selftest.py

probe: ## build the wiring probe (testbed/probe) into the cache; prints its path
	testbed/probe/build.sh

# Only the backing services (no control plane): the probe's go tests against real
# PostgreSQL, MariaDB, Redis and Memcached; then IPv6 gossip in a private network namespace.
# go vet compiles the dependencies first, so the services do not idle through the build.
probe-selftest: system-deps ## the wiring probe's go tests against fresh loopback PostgreSQL/MariaDB/Redis/Memcached
	cd testbed/probe && GOTOOLCHAIN=local go vet ./...
	testbed/services/with-services.sh bash -c 'cd testbed/probe && GOTOOLCHAIN=local go test -v -count=1 ./... | grep -E "^(--- |ok|FAIL|PASS)" ; exit $${PIPESTATUS[0]}'
	testbed/probe/ipv6-selftest.sh

# The tests are compiled first, so the bed does not idle through the build.
e2e: tools venv ## integration tests in tests/ against a fresh test bed
	$(CARGO) test --no-run --test '*'
	testbed/with-testbed.sh $(CARGO) test --no-fail-fast --test '*' -- --test-threads=1

test: tools venv lint unit fault-proxy-test probe-selftest e2e chart-test image-check ## all of the above, stopping at the first failure

demo: tools venv ## test bed in $(STATE_DIR) + seeded AWS + operator + example; Ctrl-C stops it all
	testbed/demo.sh $(STATE_DIR)

clean-testbed: testbed-down ## stop the bed and remove $(STATE_DIR)
	rm -rf $(STATE_DIR)

# BENCH_SIZES (default 10,100,1000), BENCH_RUNS (3), BENCH_STEADY_SECONDS (300, first run of a size),
# BENCH_RESYNC_SECONDS (the operator's default, 300), BENCH_OUT (bench/results/latest.json).
# Sizes from BENCH_BED_PER_RUN_FROM (500) get a fresh test bed per run (bench/run-per-bed.sh).
bench: tools venv ## scale benchmark (issue 11): N = 10/100/1000 clusters against the floor; writes bench/results/latest.json
	$(CARGO) build --release --bin grafana-ha-operator
	$(CARGO) test --release --no-run --test bench_scale
	CARGO="$(CARGO)" bench/run-per-bed.sh

# --- shipping: the image, the Helm chart and the plain manifests in deploy/ ----------------

.PHONY: lint-deploy manifests image-check chart-test

# Drift checks: the chart's copy of the CRD and deploy/manifests/ against a fresh render
# (with the pinned helm, hence tools), the Dockerfile against image-check; shellcheck and
# syntax checks of their scripts.
lint-deploy: tools
	@if command -v shellcheck >/dev/null; then \
		shellcheck -x deploy/*.sh testbed/chart/*.sh; \
	else \
		echo "shellcheck not installed; skipping shell lint of deploy/ (apt-get install shellcheck)"; \
	fi
	python3 -m py_compile testbed/chart/chart_tool.py
	@# One file per luac call: Debian's luac5.4 5.4.4 aborts (double free) on several.
	@if command -v luac5.4 >/dev/null; then \
		for f in deploy/argocd/grafanacluster-health.lua testbed/chart/argocd_health_test.lua; do \
			luac5.4 -p "$$f"; \
		done; \
	else \
		echo "lua5.4 not installed; skipping the Lua syntax check (apt-get install lua5.4)"; \
	fi
	deploy/check-dockerfile.sh
	deploy/generate.sh --check

manifests: ## regenerate deploy/manifests/, deploy/kustomization.yaml and the chart's CRD copy
	deploy/generate.sh

# No container engine here: build the release binary with the Dockerfile's own command
# (deploy/check-dockerfile.sh keeps the two equal) and show what the image would ship.
image-check: ## build the release binary exactly as the Dockerfile does; print its size
	deploy/check-dockerfile.sh
	$(CARGO) build --release --locked
	@bin="$${CARGO_TARGET_DIR:-target}/release/grafana-ha-operator"; \
		ls -l "$$bin"; du -h "$$bin"

chart-test: tools venv ## Helm chart, plain manifests, RBAC, leader election, Argo CD health on a fresh bed
	$(CARGO) build --bin grafana-ha-operator
	testbed/with-testbed.sh testbed/chart/chart-test.sh "$${CARGO_TARGET_DIR:-target}/debug/grafana-ha-operator"
