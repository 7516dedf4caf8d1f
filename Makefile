# mongorelay: build, test environment and tests. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
ENV := deploy/local/env.sh
LOGS := .cache/test-logs

.PHONY: help build test env-up env-down lint clean demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the static binary bin/mongorelay
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mongorelay ./cmd/mongorelay

env-up: ## start Kafka and the MongoDB stand-in on loopback (idempotent), write .cache/env/env.sh
	@$(ENV) up

env-down: ## stop the test environment, leaving no process behind
	@$(ENV) down

# test brings the environment up, runs every Go test (unit and integration, race detector on;
# the integration tests also run the Python client checks) and brings the environment down,
# whatever the outcome. The full log is kept in .cache/test-logs/go-test.log.
test: build ## run all tests against real servers (starts and stops the environment)
	@$(ENV) up || { $(ENV) down; exit 1; }
	@mkdir -p $(LOGS); status=0; \
	set -a; . .cache/env/env.sh; set +a; \
	$(GO) test -race -count=1 -timeout 20m -v ./... 2>&1 | tee $(LOGS)/go-test.log \
		| grep -Ev '^=== (RUN|PAUSE|CONT|NAME)' || status=$$?; \
	$(ENV) down; \
	awk '/^ *--- PASS/{p++} /^ *--- FAIL/{f++} /^ *--- SKIP/{s++} \
		END{printf "go test: %d passed, %d failed, %d skipped\n", p, f, s}' $(LOGS)/go-test.log; \
	exit $$status

lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

demo: build env-up ## stream a demo database to Kafka and show the decoded records (Ctrl-C stops)
	@deploy/demo/run.sh

clean: env-down ## remove build outputs and environment state (downloads in .cache/ are kept)
	rm -rf bin $(LOGS) .cache/env .cache/mongo-standin
