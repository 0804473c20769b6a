# recsys: see README.md. Every target needs only Go (and redis-server for tests,
# which .ci/with-redis.sh finds or starts).
GO ?= go
PKGS ?= ./...

.PHONY: all build demo test test-cluster test-short lint generate check-generated bench bench-serve ci dupl

all: build

build:
	$(GO) build ./...

## demo: the whole product on the embedded store, no Redis needed.
demo:
	$(GO) run ./cmd/recsysctl demo

## test: unit and integration tests with -race against a real redis-server.
test:
	./.ci/with-redis.sh $(GO) test -race -count=1 $(PKGS)

## test-cluster: the Redis-using packages against a local Redis Cluster (3 masters,
## 3 replicas, started and stopped by .ci/redis-cluster.sh), including the failover tests.
CLUSTER_PKGS ?= ./internal/redistest/... ./internal/profile/... ./internal/catalog/... ./internal/cooccur/... \
	./internal/registry/... ./internal/server/... ./internal/daemon/... ./internal/retrain/... ./internal/loadgen/...
## The failover tests kill and promote masters, so they run alone, after the rest.
FAILOVER_TESTS = ^TestCluster(ManualFailover|MasterCrash)UnderLoad$$
test-cluster:
	./.ci/redis-cluster.sh run sh -c '$(GO) test -race -count=1 -skip "$(FAILOVER_TESTS)" $(CLUSTER_PKGS) && $(GO) test -race -count=1 -run "$(FAILOVER_TESTS)" ./internal/daemon/'

## generate: regenerate the Go code of the API and openapi/recsys.swagger.json (plugins pinned in go.mod).
generate:
	$(GO) tool buf generate

lint:
	$(GO) tool buf lint
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## dupl: counts duplicated code blocks (dupl, pinned in go.mod as a tool; clones of 50 tokens or more) outside
## generated code and tests; `make dupl DUPL_FLAGS=-plumbing` lists them.
DUPL_FLAGS ?=
dupl:
	@git ls-files '*.go' | grep -v -e '\.pb\.go$$' -e '\.pb\.gw\.go$$' -e '_test\.go$$' | $(GO) tool dupl -files -t 50 $(DUPL_FLAGS)

## check-generated: fails when the committed generated code (Go API, OpenAPI spec) is stale.
check-generated: generate
	@if [ -n "$$(git status --porcelain -- proto openapi)" ]; then \
	  echo "generated code is stale; run 'make generate' and commit:"; \
	  git status --porcelain -- proto openapi; git diff --stat -- proto openapi; exit 1; fi

bench:
	./.ci/with-redis.sh $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-serve: the serving benchmark (benchmarks/serve): its own redis-server, a model of
## ITEMS items, recsysd, ghz and the open-loop generator; minutes (a 100K run about 4 on a quiet
## machine, 8-9 at load 20), not part of test or ci. Exits non-zero, after writing its results, when a
## phase answered more than 1 % degraded (SERVE_ARGS="--max-degraded-share 1" only records).
ITEMS ?= 100000
SERVE_ARGS ?=
bench-serve:
	$(GO) run ./benchmarks/serve --items $(ITEMS) --out benchmarks/serve/results $(SERVE_ARGS)

## ci: everything CI runs, the cluster suite included (about 2 minutes more).
ci: lint check-generated test test-cluster
