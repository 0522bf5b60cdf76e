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
