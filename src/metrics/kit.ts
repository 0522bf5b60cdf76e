// What the daemon uses of metrics, in one module it loads only when KNIT_METRICS asks for them: prom-client and
// the rest cost about 12 MiB of memory that a knit without metrics does not carry.
export { KnitMetrics } from './registry.js';
export { serveMetrics } from './start.js';
export { observedStore } from './store.js';
