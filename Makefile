# Bay: build, run, test, bench. See README.md.
BIN      := $(CURDIR)/bin
# A release tag (v1.2.3) gives 1.2.3; otherwise 0.1.0-dev+<commit>.
VERSION  ?= $(shell sh scripts/version.sh)
LDFLAGS  := $(if $(VERSION),-X github.com/bay-sandbox/bay/internal/version.Version=$(VERSION))
GO       ?= go

.PHONY: deps build run test vet bench clean consul images

deps:
	./scripts/install-deps.sh

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/bay ./cmd/bay
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ship ./cmd/ship
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/gull ./cmd/gull

# The Consul agent (v1.16.3, the last MPL-2.0 release) the Consul tests run,
# built from the tools module in tools/consul once per machine (cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/bay) and copied to bin/consul.
consul:
	GO=$(GO) ./scripts/build-consul.sh

# The container images bay, bay-ship and bay-gull (tags :dev and the
# version), built with the local Docker engine; see scripts/images.sh.
images:
	VERSION='$(VERSION)' GO=$(GO) ./scripts/images.sh

# Runs the gateway on the embedded default (local processes, no cluster).
run: deps build
	$(BIN)/bay serve $(ARGS)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# The whole test suite: unit, golden, end-to-end on the embedded default, and
# the real-Nomad integration tests when a nomad binary is on PATH.
test: deps build vet
	BAY_BIN_DIR=$(BIN) $(GO) test -race -count=1 -p 1 -timeout 25m ./...

bench: deps build
	BAY_BIN_DIR=$(BIN) $(GO) run ./bench $(ARGS)

clean:
	rm -rf $(BIN)
