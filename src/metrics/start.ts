// Serves the metrics on KNIT_METRICS. Metrics are an addition: if they cannot be served, the networks still work,
// the log says why, and `knit status` shows it.
import type { Server } from 'node:http';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { addressText, handler, listenMetrics, type MetricsAddress } from './listener.js';
import type { KnitMetrics } from './registry.js';
import { type MetricSources, SourceMetrics } from './sources.js';


/** KNIT_METRICS in `knit status`: where Prometheus metrics are served (`/metrics`), or why they are not. */
export interface MetricsStatus {
  address: string;
  listening: boolean;
  error?: string;
}

export interface RunningMetrics {
  status(): MetricsStatus;
  stop(): Promise<void>;
}

export async function serveMetrics(a: { address: MetricsAddress; metrics: KnitMetrics; sources: MetricSources; log: Logger }): Promise<RunningMetrics> {
  const address = addressText(a.address);
  const sources = new SourceMetrics(a.metrics.registry, a.sources, (source, err) => a.log.warn('a metrics source could not be read; its figures are left out of this scrape', { source, error: describe(err) }));
  const exposition = {
    contentType: a.metrics.contentType,
    metrics: async () => {
      await sources.refresh();
      return a.metrics.registry.metrics();
    },
  };
  let server: Server;
  try {
    server = await listenMetrics(a.address, handler(exposition, (err) => a.log.error('metrics scrape failed', { error: describe(err) })));
  } catch (err) {
    a.log.error('metrics are not served; networks work without them', { error: describe(err) });
    return { status: () => ({ address, listening: false, error: describe(err) }), stop: async () => undefined };
  }
  a.log.info('metrics served', { address, path: '/metrics' });
  return {
    status: () => ({ address, listening: true }),
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
