## Benchmarks (issue 6): knit against Docker's built-in bridge, side by side. Not part of `make test`.
##   make bench                  everything (about 20 min on 2 cores), figures to bench/RESULTS.md
##   make bench-quick            fewer iterations, a smoke run; figures to .testbed/bench/RESULTS-quick.md
##   make bench BENCH_ONLY=ipam  some of them (lifecycle, burst, calls, ipam, datapath, overlay,
##                               scale, convergence, dns, names, overlay-lifecycle, macvlan,
##                               encrypted), figures to
##                               .testbed/bench/RESULTS-only.md so that bench/RESULTS.md always holds a whole run
BENCH_RUN := node --import tsx bench/main.ts
BENCH_ONLY ?=
BENCH_SELECT = $(if $(BENCH_ONLY),--only=$(BENCH_ONLY))
BENCH_OUT = $(if $(BENCH_ONLY),.testbed/bench/RESULTS-only.md,bench/RESULTS.md)

.PHONY: bench bench-quick

bench: deps build
	$(BENCH_RUN) $(BENCH_SELECT) --out=$(BENCH_OUT) --command="make bench$(if $(BENCH_ONLY), BENCH_ONLY=$(BENCH_ONLY))"

bench-quick: deps build
	$(BENCH_RUN) --quick $(BENCH_SELECT) --out=.testbed/bench/RESULTS-quick.md --command="make bench-quick$(if $(BENCH_ONLY), BENCH_ONLY=$(BENCH_ONLY))"

## Issue 17 (not part of `make bench`'s default order either way; each writes its own file under .testbed/bench/):
##   make bench-cluster HOSTS=10,30   cluster scale (§13), one column per host count (at most three);
##                                    STORE=consul for the Consul test server instead of etcd;
##                                    OVERLAYS=1 for one overlay instead of two (Consul at 100 hosts)
##                                    IDLE=600 for a 10 min idle window instead of 1 min (Consul's 5 min waits)
##   make bench-cluster HOSTS=100     the same at 100 hosts, a run of its own (about 5 minutes)
##   make bench-swarm                 Docker's swarm overlay as the reference (§14)
HOSTS ?= 10,30
comma := ,

.PHONY: bench-cluster bench-swarm
STORE ?= etcd
OVERLAYS ?= 2
IDLE ?= 60

bench-cluster: deps build
	KNIT_BENCH_HOSTS=$(HOSTS) KNIT_BENCH_STORE=$(STORE) KNIT_BENCH_OVERLAYS=$(OVERLAYS) KNIT_BENCH_IDLE_S=$(IDLE) $(BENCH_RUN) --only=cluster --out=.testbed/bench/RESULTS-cluster-$(STORE)-$(subst $(comma),-,$(HOSTS))-$(OVERLAYS).md --command="make bench-cluster HOSTS=$(HOSTS) STORE=$(STORE) OVERLAYS=$(OVERLAYS)$(if $(filter-out 60,$(IDLE)), IDLE=$(IDLE))"

bench-swarm: deps build
	$(BENCH_RUN) --only=swarm --out=.testbed/bench/RESULTS-swarm.md --command="make bench-swarm"
