# herald — make targets. `make` alone lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
# The same version the packages carry (scripts/package maps git describe).
VERSION   ?= $(shell scripts/package version 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS   := -s -w -X github.com/heraldgw/herald/pkg/version.Version=$(VERSION) -X github.com/heraldgw/herald/pkg/version.Commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
NFPM_VERSION := v2.45.2
# Debian packages the tests need; installed by `make deps` when missing.
DEB_DEPS  := lintian rpm rpmlint dbus iproute2 util-linux curl
TEST_FLAGS ?=

.PHONY: help build run test unit e2e lint fmt vet staticcheck bench deps deb rpm packages clean units-check

help: ## list the targets
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_-]+:.*?## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/herald
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/herald ./cmd/herald

run: build ## run herald in the foreground on the built-in default (webhook on 127.0.0.1:8089, echo agent, state in ./.herald)
	./bin/herald run

deps: ## install what the tests need (Go modules, staticcheck, Debian packages)
	$(GO) mod download
	@missing=""; for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing:$$missing"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "warning: missing Debian packages:$$missing (tests that need them are skipped)"; fi; \
	fi
	@test -x $(GOBIN)/staticcheck && $(GOBIN)/staticcheck -version | grep -q $(STATICCHECK_VERSION:v%=%) || \
		(cd / && GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))
	@# nfpm is run with `go run` (not a dependency of the module); build it
	@# once here so the packaging tests do not pay for a cold build.
	@cd / && GOFLAGS= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) --version >/dev/null

test: deps lint ## everything CI runs: lint, unit tests with -race, the real-systemd end-to-end suite
	$(GO) test -race -count=1 -timeout 20m $(TEST_FLAGS) ./...

unit: ## unit tests only (-race), no real systemd
	$(GO) test -race -count=1 -short $(TEST_FLAGS) ./...

e2e: deps ## the end-to-end suite under a real systemd (root)
	$(GO) test -race -count=1 -timeout 10m -v $(TEST_FLAGS) ./pkg/e2e/...

lint: fmt vet staticcheck units-check ## gofmt check, go vet, staticcheck, unit file checks

fmt:
	@out=$$(gofmt -l cmd internal pkg); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	@test -x $(GOBIN)/staticcheck || (cd / && GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))
	$(GOBIN)/staticcheck ./...

units-check: ## offline checks of the unit files (security exposure ≤ 1.5)
	@for u in units/herald.service; do \
		systemd-analyze security --offline=true --threshold=15 --no-pager $$u >/dev/null || \
		{ systemd-analyze security --offline=true --no-pager $$u | tail -3; exit 1; }; done

bench: build ## benchmarks against the floor in the real-systemd sandbox; writes BENCHMARKS.md
	$(GO) run ./cmd/herald-bench -o BENCHMARKS.md

deb: build ## build dist/herald_<version>-1_amd64.deb (nfpm; version from git describe, see scripts/package)
	scripts/package deb

rpm: build ## build dist/herald-<version>-1.x86_64.rpm
	scripts/package rpm

packages: build ## build both packages
	scripts/package all

clean: ## remove build output
	rm -rf bin dist
