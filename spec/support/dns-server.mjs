// knit's resolver (from dist/) as its own process, with names from a table given as JSON: for kernel tests,
// the fault suite and the benchmark, before the daemon serves names itself. Prints {"ready":…} once listening,
// its stats as one JSON line on SIGUSR2, and closes on SIGTERM.
import { readFileSync } from 'node:fs';
import { startResolver } from '../../dist/dns/resolver.js';
import { localSources } from '../../dist/dns/sources.js';
import { createLogger } from '../../dist/log.js';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const queriers = spec.queriers ?? {}; // address -> network keys
const records = spec.records ?? {}; // network -> name -> { v4, v6 }
const internal = new Set(spec.internal ?? []);

const names = {
  networksOf: (ip) => queriers[ip],
  lookup: (name, networks) => {
    const hits = networks.map((n) => records[n]?.[name]).filter(Boolean);
    return hits.length ? { v4: hits.flatMap((h) => h.v4 ?? []), v6: hits.flatMap((h) => h.v6 ?? []) } : undefined;
  },
  reverse: (ip, networks) => {
    for (const n of networks) for (const [name, r] of Object.entries(records[n] ?? {})) if ((r.v4 ?? []).includes(ip) || (r.v6 ?? []).includes(ip)) return name;
    return undefined;
  },
  external: (ip) => !internal.has(ip),
};
// Without a list, the resolver's default: the host's own addresses and Docker's bridges.
const trusted = spec.trusted ? ((set) => (ip) => set.has(ip))(new Set(spec.trusted)) : localSources();

const resolver = await startResolver({
  address: spec.address, port: spec.port, names, trusted, resolvConf: spec.resolvConf,
  upstreamPort: spec.upstreamPort, log: createLogger(spec.logLevel ?? 'warn'),
}, spec.tuning ?? {});
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ stats: resolver.stats() })}\n`));
process.on('SIGTERM', () => void resolver.close().then(() => process.exit(0)));
