// The benchmarks `make bench` runs, in order, with their time budgets; a new one is a module plus a line here.
import type { BenchContext } from './bed.js';
import { burst } from './burst.js';
import { calls } from './calls.js';
import { cluster } from './cluster.js';
import { IDLE_EXTRA_MS } from './cluster-measure.js';
import { convergence } from './convergence.js';
import { datapath } from './datapath.js';
import { dns } from './dns.js';
import { encrypted } from './encrypted.js';
import { ipam } from './ipam.js';
import { lifecycle } from './lifecycle.js';
import { macvlan } from './macvlan.js';
import { names } from './names.js';
import { overlay } from './overlay.js';
import { overlayLifecycle } from './overlay-lifecycle.js';
import type { Figures } from './report.js';
import { scale } from './scale.js';
import { swarm } from './swarm.js';

export interface Benchmark {
  id: string;
  title: string;
  /** No new iteration starts after this (full and quick runs); the benchmark then reports what it has. */
  budgetMs: { full: number; quick: number };
  /** Extra time to finish the iteration under way and clean up, after which the runner stops its hosts. */
  graceMs: number;
  run(ctx: BenchContext): Promise<Figures>;
}

const MIN = 60_000;

export const BENCHMARKS: Benchmark[] = [
  { id: 'lifecycle', title: '1. Container lifecycle', budgetMs: { full: 1.5 * MIN, quick: 0.5 * MIN }, graceMs: 2 * MIN, run: lifecycle },
  { id: 'burst', title: '2. Burst start', budgetMs: { full: 5 * MIN, quick: 1 * MIN }, graceMs: 3 * MIN, run: burst },
  { id: 'calls', title: '3. Plugin call cost', budgetMs: { full: 1 * MIN, quick: 0.5 * MIN }, graceMs: 2 * MIN, run: calls },
  { id: 'ipam', title: '4. IPAM throughput and scale', budgetMs: { full: 2 * MIN, quick: 1 * MIN }, graceMs: 2 * MIN, run: ipam },
  { id: 'datapath', title: '5. Datapath (bridge)', budgetMs: { full: 1.5 * MIN, quick: 0.5 * MIN }, graceMs: 2 * MIN, run: datapath },
  { id: 'overlay', title: '5. Datapath (overlay)', budgetMs: { full: 2 * MIN, quick: 1 * MIN }, graceMs: 3 * MIN, run: overlay },
  { id: 'scale', title: '6. Scale', budgetMs: { full: 5 * MIN, quick: 1.5 * MIN }, graceMs: 3 * MIN, run: scale },
  { id: 'convergence', title: '7. Overlay convergence', budgetMs: { full: 3 * MIN, quick: 1 * MIN }, graceMs: 3 * MIN, run: convergence },
  { id: 'dns', title: '8. Resolver', budgetMs: { full: 1 * MIN, quick: 0.5 * MIN }, graceMs: 1 * MIN, run: dns },
  { id: 'names', title: '9. Names across hosts', budgetMs: { full: 2 * MIN, quick: 1 * MIN }, graceMs: 2 * MIN, run: names },
  { id: 'overlay-lifecycle', title: '10. Container lifecycle: knit overlay against knit bridge', budgetMs: { full: 2 * MIN, quick: 1 * MIN }, graceMs: 2 * MIN, run: overlayLifecycle },
  { id: 'macvlan', title: '11. Macvlan', budgetMs: { full: 2 * MIN, quick: 1 * MIN }, graceMs: 2 * MIN, run: macvlan },
  { id: 'encrypted', title: '12. Encrypted overlay', budgetMs: { full: 3 * MIN, quick: 1.5 * MIN }, graceMs: 3 * MIN, run: encrypted },
  { id: 'cluster', title: '13. Cluster scale', budgetMs: { full: 9 * MIN + IDLE_EXTRA_MS, quick: 3 * MIN + IDLE_EXTRA_MS }, graceMs: 4 * MIN, run: cluster },
  { id: 'swarm', title: "14. Docker's swarm overlay as the reference", budgetMs: { full: 4 * MIN, quick: 2 * MIN }, graceMs: 3 * MIN, run: swarm },
];

/** Parts of issue 6 not measured yet; each becomes a module in BENCHMARKS. Empty: every part has one. */
export const NOT_DONE: string[] = [];
