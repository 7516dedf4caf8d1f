# mongorelay: build, test environment and tests. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
RELEASE_ARCHES := amd64 arm64
ENV := deploy/local/env.sh
LOGS := .cache/test-logs

.PHONY: help build release test env-up env-down lint clean demo docs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build the static binary bin/mongorelay
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mongorelay ./cmd/mongorelay

# release cross-compiles the binaries users deploy (the Dockerfile copies them from dist/):
# static (no cgo), stamped with version, commit and build date (`mongorelay version`).
release: ## build static linux/amd64 and linux/arm64 binaries in dist/ with SHA256SUMS
	@rm -rf dist && mkdir -p dist
	@for arch in $(RELEASE_ARCHES); do \
		echo "build dist/mongorelay-linux-$$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o dist/mongorelay-linux-$$arch ./cmd/mongorelay; \
		file -b dist/mongorelay-linux-$$arch | grep -q 'statically linked' \
			|| { echo "dist/mongorelay-linux-$$arch is not statically linked"; exit 1; }; \
	done
	@cd dist && sha256sum mongorelay-linux-* > SHA256SUMS && cat SHA256SUMS

env-up: ## start Kafka and the MongoDB stand-in on loopback (idempotent), write .cache/env/env.sh
	@$(ENV) up

env-down: ## stop the test environment, leaving no process behind
	@$(ENV) down

# test brings the environment up, runs every Go test (unit and integration, race detector on;
# the integration tests also run the Python client checks), then the checks of the deployment
# files (deploy/check, a module of its own: each file and a broken copy of it through the
# real tool's parser; the compose file's workers as processes), then the Go end-to-end suites
# (build tag e2e: real worker processes killed and restarted, built without -race; e2e/hosts runs
# 3 of them in network namespaces of their own, on a bridge, with a private Kafka and stand-in on
# it, and cuts their links: it needs root, and skips without it unless CI=true; their output
# joins go-test.log and the summary), a short chaos run (one seed, 10,000 operations,
# exactly-once: lost, duplicated and reordered must all be 0), then the end-to-end suite in e2e/python against
# bin/mongorelay (real processes, third-party clients), and brings the environment down
# whatever the outcome. Full logs are kept in .cache/test-logs/.
test: build ## run all tests against real servers (starts and stops the environment)
	@$(ENV) up || { $(ENV) down; exit 1; }
	@mkdir -p $(LOGS); status=0; \
	set -a; . .cache/env/env.sh; set +a; \
	$(GO) test -race -count=1 -timeout 20m -v ./... 2>&1 | tee $(LOGS)/go-test.log \
		| grep -Ev '^=== (RUN|PAUSE|CONT|NAME)' || status=$$?; \
	(cd deploy/check && $(GO) test -count=1 -timeout 5m -v . -args -mongorelay $(CURDIR)/bin/mongorelay) 2>&1 \
		| tee -a $(LOGS)/go-test.log | grep -Ev '^=== (RUN|PAUSE|CONT|NAME)' || status=$$?; \
	$(GO) test -tags e2e -count=1 -timeout 12m -v ./e2e/... 2>&1 | tee -a $(LOGS)/go-test.log \
		| grep -Ev '^=== (RUN|PAUSE|CONT|NAME)' || status=$$?; \
	$(GO) test -tags chaos -count=1 -timeout 6m -v -run 'TestChaos|TestVerify' ./e2e/chaos -args -seed 1 -ops 10000 -duration 90s \
		-exactly-once=true -binary $(CURDIR)/bin/mongorelay 2>&1 | tee -a $(LOGS)/go-test.log \
		| grep -Ev '^=== (RUN|PAUSE|CONT|NAME)' || status=$$?; \
	MONGORELAY_E2E_BINARY=$(CURDIR)/bin/mongorelay $$MONGORELAY_TEST_PYTHON -m pytest -q -p no:cacheprovider \
		e2e/python 2>&1 | tee $(LOGS)/pytest.log || status=$$?; \
	$(ENV) down; \
	awk '/^ *--- PASS/{p++} /^ *--- FAIL/{f++} /^ *--- SKIP/{s++} \
		END{printf "go test: %d passed, %d failed, %d skipped\n", p, f, s}' $(LOGS)/go-test.log; \
	exit $$status

lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

docs: ## write the configuration reference pages in docs/ from the code's own tables
	$(GO) run ./cmd/mongorelay config docs connector > docs/connector-config.md
	$(GO) run ./cmd/mongorelay config docs worker > docs/worker-config.md

demo: build env-up ## stream a demo database to Kafka and show the decoded records (Ctrl-C stops)
	@deploy/demo/run.sh

clean: env-down ## remove build outputs and environment state (downloads in .cache/ are kept)
	rm -rf bin dist $(LOGS) .cache/env .cache/mongo-standin

# contract replays Kafka Connect 4.x's REST request/response pairs and sends the bad inputs
# (e2e/contract) through a follower of a 3-node cluster, through its leader and through a
# standalone process; make test does both through a follower only. It starts the test
# environment, and leaves it running for the next run (make env-down).
.PHONY: contract
contract: env-up ## replay Kafka Connect's REST contract through a follower, the leader and standalone
	@set -a; . .cache/env/env.sh; set +a; \
	$(GO) test -tags e2e -count=1 -v -timeout 10m ./e2e/contract -args -contract.via=follower,leader,standalone \
		| grep -Ev '^=== (RUN|PAUSE|CONT|NAME)'

# bench runs the benchmark harness (bench/README.md): mongorelay against the raw driver and
# franz-go ceilings and against the MongoDB Kafka Connector and Debezium on Kafka Connect, on
# private servers it starts and stops itself; results are appended to bench/results/<date>.md.
# Flags go to bench/cmd/benchrun, e.g. make bench BENCH_FLAGS="-events 100000";
# BENCH_BASELINE=<git rev> runs that revision's build alternately with relay-1 and compares them.
.PHONY: bench
bench: ## measure mongorelay against the ceilings and the peers (about 45 min; bench/README.md)
	@bench/run.sh $(BENCH_FLAGS)

# chaos runs the chaos harness (e2e/chaos/README.md, DESIGN.md 13) on private servers it starts
# and stops itself: 3 worker nodes of bin/mongorelay, 2 connectors, a seeded writer, kill -9 and
# SIGSTOP on a seeded schedule, then a verifier of every change. It fails on any lost or
# reordered change, and on any duplicate with EXACTLY_ONCE=true. Logs in .cache/chaos/.
SEED ?= 1
OPS ?= 10000
DURATION ?= 90s
EXACTLY_ONCE ?= true
.PHONY: chaos
chaos: build ## kill and pause nodes under writes, verify every change (SEED=n OPS= DURATION= EXACTLY_ONCE=)
	$(GO) test -tags chaos -count=1 -v -timeout 0 -run 'TestChaos|TestVerify' ./e2e/chaos -args \
		-seed $(SEED) -ops $(OPS) -duration $(DURATION) -exactly-once=$(EXACTLY_ONCE) -binary $(CURDIR)/bin/mongorelay

# chaos-outages runs the outage harness (e2e/chaos/README.md, issue 14) on private servers: the
# same 3 nodes and 2 connectors, the seeded writer at a steady rate, and three outages of 30 s
# one after another (the Kafka broker restarted; MongoDB, then the external schema registry, cut
# off by a proxy the harness owns). After each it fails if a probe of every task or the tasks'
# health takes over 30 s; then the verifier as for chaos. About 5 minutes; logs in
# .cache/chaos-outages/.
.PHONY: chaos-outages
chaos-outages: build ## take Kafka, MongoDB and the registry away for 30 s each under writes (SEED=n EXACTLY_ONCE=)
	$(GO) test -tags chaos -count=1 -v -timeout 15m -run 'TestOutage' ./e2e/chaos -args \
		-seed $(SEED) -exactly-once=$(EXACTLY_ONCE) -binary $(CURDIR)/bin/mongorelay
