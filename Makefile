# knit: build, run and test. `make run` and `make test` are the two commands of the README.
SHELL := /bin/bash
.DEFAULT_GOAL := build
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js
RESULTS := .testbed/results
KNIT_ENV ?=

.PHONY: build deps node-deps run install uninstall test test-unit test-kernel test-e2e typecheck clean-testbed

## Exactly what package-lock.json records (npm ci fails if package.json and the lock file disagree: run
## `npm install` to update the lock file, and commit both).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

node-deps: node_modules/.package-lock.json

dist/main.js: node-deps $(shell find src -name '*.ts' 2>/dev/null) tsconfig.json
	npm run --silent build

build: dist/main.js

## `make install`: the plain daemon and the `knit` command, into PREFIX (DESTDIR for packaging). The unit goes
## to SYSTEMD_UNIT_DIR when systemd runs here; it is then enabled and (re)started, unless DESTDIR is set.
PREFIX ?= /usr/local
SYSTEMD_UNIT_DIR ?= $(if $(wildcard /run/systemd/system),/etc/systemd/system,)
NODE ?= $(shell command -v node)

install: build
	PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' SYSTEMD_UNIT_DIR='$(SYSTEMD_UNIT_DIR)' NODE='$(NODE)' bash plugin/install.sh install

## Removes what install put there; knit's records (KNIT_STATE_DIR, /var/lib/knit) stay.
uninstall:
	PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' SYSTEMD_UNIT_DIR='$(SYSTEMD_UNIT_DIR)' bash plugin/install.sh uninstall

## System packages: iproute2 and iptables for knit; dockerd, etcd, busybox and friends for the tests.
deps:
	bash scripts/testbed-deps.sh

run: build
	@command -v ip >/dev/null && command -v iptables-restore >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables)
	$(KNIT_ENV) node --max-semi-space-size=2 dist/main.js

typecheck: node-deps
	npx tsc -p tsconfig.spec.json --noEmit

test-unit: build
	@mkdir -p $(RESULTS)
	$(JEST) --selectProjects unit store --maxWorkers=3 --json --outputFile=$(RESULTS)/unit.json

## Kernel tests run inside a throwaway network namespace, so they cannot touch the host's links or rules.
test-kernel: build
	@mkdir -p $(RESULTS)
	bash scripts/in-netns.sh knt-kernel $(JEST) --selectProjects kernel --runInBand --json --outputFile=$(RESULTS)/kernel.json

## End-to-end on real engines: 20.10 (Debian 12), 26.1 and 28.5 (Debian trixie and sid roots, built once into
## .testbed/ by debootstrap). Which suite runs on which engine is SUITE_ENGINES in spec/support/engine.ts (the
## README's Engines table); each file's duration is in $(RESULTS)/e2e.json.
test-e2e: build
	@mkdir -p $(RESULTS)
	$(JEST) --selectProjects e2e --runInBand --json --outputFile=$(RESULTS)/e2e.json

## The whole suite: system packages, build, type check, unit, store, kernel and end-to-end tests.
test: deps build typecheck
	@rm -rf $(RESULTS); mkdir -p $(RESULTS); bash scripts/testbed-cleanup.sh
	@status=0; since=$$(date +%s%3N); \
	$(MAKE) --no-print-directory test-unit || status=1; \
	$(MAKE) --no-print-directory test-kernel || status=1; \
	$(MAKE) --no-print-directory test-e2e || status=1; \
	bash scripts/testbed-cleanup.sh; \
	node scripts/test-summary.mjs $(RESULTS) --suites unit,kernel,e2e --since $$since || status=1; \
	exit $$status

clean-testbed:
	bash scripts/testbed-cleanup.sh

## The managed plugin (plugin/plugin.mk), the benchmarks (bench/bench.mk) and the fault suite (faults.mk,
## `make test-faults`, run by CI after `make test`) keep their own targets.
-include plugin/plugin.mk bench/bench.mk faults.mk
