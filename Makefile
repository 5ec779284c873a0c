# Gatehouse build and test entry points. `make test` is the one command that
# runs every test of every module in the workspace; CI runs exactly it.

GO          ?= go
GOTEST_FLAGS ?= -race -count=1 -timeout 20m
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure at the deadline
# (go.dev/issue/75804, fixed in Go 1.27). A count has no deadline to race.
FUZZTIME    ?= 50000x
# Every module of the workspace (go.work), root first.
MODULES     := $(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null)
# Fuzz targets run briefly on every test run: module-dir:package:target.
FUZZ_TARGETS := \
	pkg:channel:FuzzParse \
	services/edge:internal/protocol:FuzzParseFrame \
	services/edge:internal/protocol:FuzzAppendJSONString \
	services/authz:internal/verifier:FuzzVerify \
	services/chat:internal/provider:FuzzSplitWords \
	services/meter:internal/ingest:FuzzDecode \
	services/authz:internal/keystore:FuzzParse \
	services/chat:internal/provider:FuzzReadSSE \
	services/chat:internal/provider:FuzzOpenAIToolCalls \
	services/chat:internal/provider:FuzzJSONDocument \
	services/edge:.:FuzzClientInput \
	services/edge:.:FuzzOpenAIRequest \
	services/edge:internal/wsframe:FuzzReader

.PHONY: test unit fuzz vet fmt build run deps

## test: vet, all tests of all modules with -race, then each fuzz target for $(FUZZTIME) executions
test: deps vet unit fuzz

deps:
	@./scripts/test-deps.sh

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

unit:
	@fail=0; for m in $(MODULES); do \
	  echo "=== go test $$m"; \
	  (cd $$m && $(GO) test $(GOTEST_FLAGS) ./...) || fail=1; \
	done; exit $$fail

fuzz:
	@set -e; for ft in $(FUZZ_TARGETS); do \
	  mod=$${ft%%:*}; rest=$${ft#*:}; pkg=$${rest%%:*}; target=$${rest#*:}; \
	  echo "=== fuzz $$target in $$mod/$$pkg for $(FUZZTIME)"; \
	  (cd $$mod && $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$pkg); \
	done

build:
	$(GO) build -o bin/gatehouse ./cmd/gatehouse

run:
	$(GO) run ./cmd/gatehouse dev

fmt:
	gofmt -w $$(git ls-files '*.go')
