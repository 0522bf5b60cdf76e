# The fault suite (issue 7): hostile input, access, churn with crashes, engine restarts, store faults.
# Included by the Makefile; `make test-faults` runs it alone and prints its summary table.
FAULTS_JEST ?= node --experimental-vm-modules node_modules/jest/bin/jest.js
FAULTS_RESULTS ?= .testbed/results

.PHONY: test-faults

## Runs the suites one at a time (they start engines and kill knit); about 5 minutes on 2 cores. CI runs it after `make test`.
test-faults: deps build
	@mkdir -p $(FAULTS_RESULTS); rm -f $(FAULTS_RESULTS)/faults-summary.jsonl $(FAULTS_RESULTS)/faults.json
	@status=0; since=$$(date +%s%3N); \
	$(FAULTS_JEST) --config spec/faults/jest.config.js --runInBand --json --outputFile=$(FAULTS_RESULTS)/faults.json || status=1; \
	node spec/faults/summary.mjs $(FAULTS_RESULTS)/faults-summary.jsonl $(FAULTS_RESULTS)/faults.json || status=1; \
	node scripts/test-summary.mjs $(FAULTS_RESULTS) --suites faults --since $$since || status=1; \
	exit $$status
