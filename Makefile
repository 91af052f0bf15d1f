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
# promtool checks and unit-tests the Prometheus rules in packaging/monitoring/; like
# nfpm it runs with `go run`, outside herald's module. remove_all_sd leaves
# out Prometheus' service discovery (cloud SDKs, Kubernetes), which rule
# tests never use: a cold build takes minutes instead of half an hour.
PROMTOOL_VERSION := v0.316.0
PROMTOOL := cd / && GOFLAGS= $(GO) run -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
# Debian packages the tests need; installed by `make deps` when missing.
DEB_DEPS  := lintian rpm rpmlint dbus iproute2 util-linux curl
TEST_FLAGS ?=
# make fuzz: time per fuzz target, fuzzing workers (the default 1 keeps a
# shared machine usable; raise it on an idle one) and the time spent
# shrinking each new input.
FUZZTIME  ?= 30s
FUZZPARALLEL ?= 1
FUZZMINIMIZETIME ?= 10s

.PHONY: help build run test cluster-test unit e2e fuzz lint fmt vet staticcheck bench deps deb rpm packages clean units-check rules-test

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
	@# promtool too (a large build: several minutes cold).
	@$(PROMTOOL) --version >/dev/null

test: deps lint rules-test ## everything CI runs: lint, rule tests, unit tests with -race, the real-systemd end-to-end suite
	$(GO) test -race -count=1 -timeout 20m $(TEST_FLAGS) ./...
	$(GO) test -race -count=1 -tags heraldtest $(TEST_FLAGS) ./pkg/adapter/fault/ ./pkg/adapter/all/

# The cluster tests (build tag cluster) run three herald units against a
# three-server JetStream cluster in the test process and take minutes, so
# they are a target of their own, which CI runs after `make test`. Without
# -race: herald runs as its own (uninstrumented) binary under systemd as in
# every e2e test, and the race detector would only slow the in-process NATS
# servers the nodes depend on.
cluster-test: ## cluster mode under real systemd: node loss (SIGKILL), NATS partition, NATS server loss, rolling restart
	$(GO) test -count=1 -timeout 20m -tags cluster -run '^TestCluster' -v $(TEST_FLAGS) ./pkg/e2e/

rules-test: ## promtool: check and unit-test the Prometheus rules in packaging/monitoring/ (the Go tests check them against the registry)
	$(PROMTOOL) check rules $(CURDIR)/packaging/monitoring/herald.rules.yml
	$(PROMTOOL) test rules $(CURDIR)/packaging/monitoring/herald_rules.test.yml

unit: ## unit tests only (-race), no real systemd
	$(GO) test -race -count=1 -short $(TEST_FLAGS) ./...
	$(GO) test -race -count=1 -short -tags heraldtest $(TEST_FLAGS) ./pkg/adapter/fault/ ./pkg/adapter/all/

e2e: deps ## the end-to-end suite under a real systemd (root)
	$(GO) test -race -count=1 -timeout 10m -v $(TEST_FLAGS) ./pkg/e2e/...

# Every `func FuzzX(f *testing.F)` under cmd/ and pkg/, one at a time: go test
# -fuzz takes a single target per package. New findings are written to the
# package's testdata/fuzz/FuzzX/ and then run with the seed corpus by `go test`.
fuzz: ## fuzz every fuzz target for FUZZTIME each (default 30s; FUZZPARALLEL workers, default 1)
	@failed=""; \
	for file in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' cmd pkg | sort); do \
		dir=./$$(dirname "$$file"); \
		for t in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\).*/\1/p' "$$file"); do \
			echo "== $$dir $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) -parallel $(FUZZPARALLEL) $(TEST_FLAGS) "$$dir" </dev/null || \
				failed="$$failed $$dir:$$t"; \
		done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

lint: fmt vet staticcheck units-check ## gofmt check, go vet, staticcheck, unit file checks

fmt:
	@out=$$(gofmt -l cmd pkg scripts packaging); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The cluster tests (build tag cluster) are vetted and checked too: only
# make cluster-test builds them otherwise.
vet:
	$(GO) vet ./...
	$(GO) vet -tags cluster ./pkg/e2e/

staticcheck:
	@test -x $(GOBIN)/staticcheck || (cd / && GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION))
	$(GOBIN)/staticcheck ./...
	$(GOBIN)/staticcheck -tags cluster ./pkg/e2e/

units-check: ## offline checks of the unit files (security exposure ≤ 1.5, system and user unit)
	@for u in units/herald.service; do \
		systemd-analyze security --offline=true --threshold=15 --no-pager $$u >/dev/null || \
		{ systemd-analyze security --offline=true --no-pager $$u | tail -3; exit 1; }; done
	@# The user unit (systemctl --user) scores 1.5, the system unit 1.1. The
	@# only items it loses are User= (the analysis scores a unit without User=
	@# as root; a user manager runs it as its own user and can switch to no
	@# other) and ProtectHome=read-only (the binary and the configuration are
	@# in the home directory). At 1.5 the gate fails when any heavier setting
	@# goes (ProtectSystem=, PrivateTmp=, PrivateDevices=, NoNewPrivileges=,
	@# RestrictNamespaces=, SystemCallFilter=: 1.7 to 3.1); the lightest
	@# (MemoryDenyWriteExecute=, LockPersonality=) move it less than the rounding.
	@# --user needs a runtime directory even offline.
	@rt=$$(mktemp -d) && trap 'rm -rf "$$rt"' EXIT && for u in units/user/herald.service; do \
		XDG_RUNTIME_DIR=$$rt systemd-analyze security --offline=true --user --threshold=15 --no-pager $$u >/dev/null || \
		{ XDG_RUNTIME_DIR=$$rt systemd-analyze security --offline=true --user --no-pager $$u | tail -3; exit 1; }; done

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
