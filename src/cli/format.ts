// `knit status` and `knit doctor` for a person (pure: the daemon's JSON document in, text out).
import type { DoctorReport } from '../network/doctor.js';
import type { SweepReport } from '../maintenance.js';
import type { PortMapping } from '../network/records.js';
import type { StatusDocument, StoreStatus } from '../status.js';

export type DoctorDocument = DoctorReport & SweepReport & { tunnelRepaired?: boolean };

/** Columns padded to their widest cell, two spaces apart, each row indented under its heading. */
export function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}`.trimEnd());
}

const heading = (name: string, value: string): string => `${`${name}:`.padEnd(11)}${value}`;

export function ms(n: number): string {
  return n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`;
}

export function port(p: PortMapping): string {
  const ip = p.hostIp || '0.0.0.0';
  return `${ip.includes(':') ? `[${ip}]` : ip}:${p.hostPort}->${p.containerPort}/${p.proto}`;
}

export function storeLine(s: StoreStatus): string {
  if (s.kind === 'local') return 'local (embedded, this host only)';
  const reach = s.reachable ? 'reachable' : `UNREACHABLE (${s.error ?? 'no answer'})`;
  const lease = s.lease === 'held' ? 'lease held' : s.lease === 'lost' ? 'lease LOST (others have dropped this host)' : 'lease unknown';
  return `${s.kind}, ${reach}, ${lease}`;
}

/** Where a scraper finds the metrics: an HTTP URL, or the unix socket and the path to ask on it. */
export function metricsLine(m: NonNullable<StatusDocument['metrics']>): string {
  if (!m.listening) return `NOT served on ${m.address} (${m.error ?? 'not listening'})`;
  return m.address.startsWith('unix://') ? `${m.address}, GET /metrics` : `http://${m.address}/metrics`;
}

function networkLines(doc: StatusDocument): string[] {
  if (doc.networks.length === 0) return [heading('Networks', 'none')];
  const rows = doc.networks.map((n) => [n.id, n.vni !== undefined ? `${n.mode} vni ${n.vni}` : n.mode, n.subnets.join(' ') || '-', n.bridge, String(n.endpoints)]);
  return [heading('Networks', String(doc.networks.length)), ...table(['ID', 'MODE', 'SUBNETS', 'BRIDGE', 'ENDPOINTS'], rows)];
}

function endpointLines(doc: StatusDocument): string[] {
  if (doc.endpoints.length === 0) return [heading('Endpoints', 'none')];
  const rows = doc.endpoints.map((e) => [
    e.id, e.network, [e.address, e.addressV6].filter(Boolean).join(' ') || '-', e.ports.map(port).join(', ') || '-',
  ]);
  return [heading('Endpoints', String(doc.endpoints.length)), ...table(['ID', 'NETWORK', 'ADDRESSES', 'PUBLISHED'], rows)];
}

function peerLines(doc: StatusDocument): string[] {
  if (!doc.peers) return [];
  if (doc.peers.length === 0) return [heading('Peers', 'no other host is alive in the store')];
  const rows = doc.peers.map((p) => [p.host, p.vtep ?? '-', String(p.endpoints)]);
  return [heading('Peers', String(doc.peers.length)), ...table(['HOST', 'VTEP', 'ENDPOINTS'], rows)];
}

/** Which WireGuard runs (kernel or wireguard-go), this host's tunnel and each peer's last handshake. */
function wireguardLines(doc: StatusDocument): string[] {
  const w = doc.wireguard;
  if (!w) return [];
  if (!w.up) return [heading('WireGuard', `not in use (no encrypted overlay on this host)${w.backend ? `; backend ${w.backend}` : ''}`)];
  const backend = w.backend === 'kernel' ? 'kernel' : 'wireguard-go (userspace: the kernel has no WireGuard)';
  const head = heading('WireGuard', `${backend}, ${w.device} ${w.address ?? '-'} port ${w.listenPort}, public key ${w.publicKey ?? '-'}`);
  const age = (t?: number) => (t ? `${Math.max(0, Math.round(Date.now() / 1000 - t))} s ago` : 'never');
  const rows = w.peers.map((p) => [p.host, p.endpoint, p.address, age(p.latestHandshake), `${p.rx ?? 0}/${p.tx ?? 0}`]);
  return rows.length ? [head, ...table(['PEER', 'ENDPOINT', 'TUNNEL', 'HANDSHAKE', 'RX/TX BYTES'], rows)] : [head, '  no peer publishes a WireGuard key yet'];
}

function callLines(doc: StatusDocument): string[] {
  const names = Object.keys(doc.calls).sort();
  if (names.length === 0) return [heading('Calls', 'none yet')];
  const total = names.reduce((n, k) => n + doc.calls[k].count, 0);
  const rows = names.map((k) => {
    const c = doc.calls[k];
    return [k.replace(/^\//, ''), String(c.count), ms(c.p50), ms(c.p99), String(c.errors)];
  });
  return [heading('Calls', `${total} since start (times inside knit)`), ...table(['CALL', 'COUNT', 'P50', 'P99', 'ERRORS'], rows)];
}

export function formatStatus(doc: StatusDocument): string {
  const spawned = Object.entries(doc.spawned).filter(([, n]) => n > 0);
  return [
    heading('Host', doc.host),
    heading('Store', storeLine(doc.store)),
    ...(doc.metrics ? [heading('Metrics', metricsLine(doc.metrics))] : []),
    ...networkLines(doc),
    ...endpointLines(doc),
    ...peerLines(doc),
    ...wireguardLines(doc),
    ...callLines(doc),
    heading('Processes', spawned.length ? `${spawned.map(([t, n]) => `${t} ${n}`).join(', ')} (spawned since start)` : 'none spawned since start'),
    heading('Memory', `${Math.round(doc.rssBytes / 1024 / 1024)} MB resident`),
  ].join('\n') + '\n';
}

const SWEPT: Array<[keyof SweepReport, string]> = [
  ['orphanNetworks', 'networks dockerd gave up on, removed'],
  ['staleEndpoints', 'stale endpoints removed'],
  ['restoredAddresses', 'addresses of running endpoints re-recorded'],
  ['leakedAddresses', 'leaked addresses released'],
  ['segments', 'overlay segment memberships put right'],
];

export function formatDoctor(doc: DoctorDocument): string {
  const counts: Array<[number, string]> = [
    [doc.repaired, 'kernel objects repaired'],
    [doc.removed, 'links without a record removed'],
    [doc.firewallJumpsFixed, 'firewall jumps restored'],
    ...SWEPT.map(([k, text]): [number, string] => [doc[k], text]),
    [doc.tunnelRepaired ? 1 : 0, 'WireGuard tunnel of encrypted overlays brought back'],
  ];
  const done = counts.filter(([n]) => n > 0).map(([n, text]) => `  ${n} ${text}`);
  const lines: string[] = [];
  if (doc.findings.length === 0 && done.length === 0 && doc.failures.length === 0) {
    lines.push('knit doctor: records, kernel links, firewall and addresses agree; nothing to fix');
  } else {
    const n = doc.findings.length;
    lines.push(n ? `knit doctor: ${n} finding${n === 1 ? '' : 's'}` : 'knit doctor: records and kernel links agree');
    lines.push(...doc.findings.map((f) => `  - ${f}`));
    if (done.length) lines.push('Fixed:', ...done);
  }
  if (doc.failures.length) lines.push('Could not fix:', ...doc.failures.map((f) => `  - ${f}`));
  return lines.join('\n') + '\n';
}
