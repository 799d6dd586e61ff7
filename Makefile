# netchecker: build, test and run targets. `make help` lists them.
#
# The two commands a newcomer needs:
#   make demo   server + two agents on loopback, ending with a connectivity check
#   make test   every test: lint, Rust tests, API fuzzing, deployment checks,
#               the status page in Chromium, end-to-end (as root)

CARGO ?= cargo
SERVER_ENDPOINT ?= 127.0.0.1:8081

.DEFAULT_GOAL := help
.PHONY: help build release test test-rust fuzz-api test-deploy test-ui e2e e2e-dual e2e-ipv6 e2e-selftest lint fmt run-server run-agent demo bench reliability images examples clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build both binaries (debug)
	$(CARGO) build --workspace --bins

release: ## Build optimised binaries into target/release
	$(CARGO) build --release --workspace --bins

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## cargo fmt --check, clippy with warnings as errors, no import loops between modules
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 hack/check-module-layers.py --self-test
	python3 hack/check-module-layers.py crates/server/src crates/agent/src crates/wire/src crates/cli/src

test: lint test-rust fuzz-api test-deploy test-ui e2e e2e-dual ## Every test (what CI runs)

test-rust: ## Unit, in-process and integration tests of every crate
	$(CARGO) test --workspace

fuzz-api: ## Fuzz a live server against doc/openapi.json with Schemathesis (1000+ requests, no 5xx)
	CARGO=$(CARGO) hack/fuzz-api.sh

test-deploy: ## Helm lint, manifest schemas, examples drift, hadolint, promtool rules, dashboard metric names
	hack/test-deploy.sh

test-ui: ## The status page in headless Chromium against a real server on loopback (installs chromium as root)
	hack/test-ui.sh

e2e: release ## End-to-end fault scenarios in network namespaces (root; skipped loudly otherwise)
	tests/e2e/run.sh

e2e-dual: release ## End-to-end over dual-stack: scenarios 1-3, 5, 18 (IPv6 broken on one node) and 19 (IPv6 cut between two nodes on the mesh) (root)
	E2E_FAMILIES=dual tests/e2e/run.sh 1 2 3 5 18 19

e2e-ipv6: release ## End-to-end with the server reached over IPv6 only: scenarios 1-3 and 5 (root)
	E2E_FAMILIES=ipv6 tests/e2e/run.sh 1 2 3 5

e2e-selftest: ## Check the e2e topology and faults with curl only (root; no netchecker binaries)
	tests/e2e/run.sh --selftest

demo: ## Run server and two agents on loopback and show the connectivity check (no cluster needed)
	hack/demo.sh

run-server: ## Run the server without Kubernetes on $(SERVER_ENDPOINT)
	$(CARGO) run -p netchecker-server -- --kube=false --endpoint $(SERVER_ENDPOINT)

run-agent: ## Run one agent against $(SERVER_ENDPOINT) (MY_POD_NAME defaults to netchecker-agent-local)
	MY_POD_NAME=$${MY_POD_NAME:-netchecker-agent-local} MY_NODE_NAME=$${MY_NODE_NAME:-$$(hostname)} \
	  $(CARGO) run -p netchecker-agent -- --serverendpoint $(SERVER_ENDPOINT) --reportinterval 5

bench: release ## Benchmarks; results go to doc/benchmarks.md
	hack/bench.sh

reliability: ## Full-size floods, stalls, API chaos, agent endurance and the attacks on trust (release; figures in doc/reliability.md)
	hack/reliability.sh

images: ## Build multi-arch images with docker buildx (REGISTRY=... TAG=... PUSH=1, see doc/deployment.md)
	hack/images.sh

examples: ## Regenerate examples/ from the Helm chart
	hack/gen-examples.sh

clean: ## Remove build output and installed test tools
	$(CARGO) clean
	rm -rf .tools .e2e
