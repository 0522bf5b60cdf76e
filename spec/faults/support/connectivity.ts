// Every running container on a knit network reaches a peer: another host's container on an overlay or macvlan network,
// else one on its host, else the gateway.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultCluster } from './fault-cluster.js';
import type { ClusterView, DockerEndpoint, HostView } from './view.js';

interface Target {
  ip: string;
  what: string;
}

function target(v: ClusterView, h: HostView, e: DockerEndpoint): Target {
  const net = h.networks.find((n) => n.id === e.networkId);
  const subnet = net?.ipv4[0]?.subnet;
  if (net?.mode === 'overlay' || net?.mode === 'macvlan') {
    for (const other of v.hosts.filter((o) => o !== h)) {
      const ids = new Set(other.networks.filter((n) => n.ipv4[0]?.subnet === subnet).map((n) => n.id));
      const peer = other.docker.find((d) => ids.has(d.networkId));
      if (peer) return { ip: peer.ip, what: `${peer.container} on ${other.name}` };
    }
  }
  const local = h.docker.find((d) => d.networkId === e.networkId && d.endpointId !== e.endpointId);
  if (local) return { ip: local.ip, what: local.container };
  // dockerd shows no gateway for a network whose IPAM driver chose it: knit's record has it.
  const gateway = net?.ipv4[0]?.gateway?.split('/')[0] || h.dockerNetworks.find((n) => n.id === e.networkId)?.gateway || '';
  return { ip: gateway, what: 'the gateway' };
}

async function pings(c: FaultCluster, i: number, container: string, ip: string): Promise<boolean> {
  // Entries for a peer that just appeared can take a moment to be programmed: a few tries, a few seconds.
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = await c.docker(i, ['exec', container, 'ping', '-c', '1', '-W', '2', ip], { reject: false, timeoutMs: 15_000 });
    if (r.exitCode === 0) return true;
    await sleep(1_000);
  }
  return false;
}

/** Pings from every running container, once per knit network it is on; returns the failures and how many pinged. */
export async function connectivity(c: FaultCluster, v: ClusterView): Promise<{ failures: string[]; pinged: number }> {
  const failures: string[] = [];
  let pinged = 0;
  await Promise.all(v.hosts.map(async (h) => {
    for (const e of h.docker) {
      const t = target(v, h, e);
      pinged++;
      if (!t.ip || !(await pings(c, h.index, e.container, t.ip))) failures.push(`${h.name}: ${e.container} (${e.ip} on ${e.network}) cannot reach ${t.what} (${t.ip})`);
    }
  }));
  // A check of nothing is not a pass: the churn or fault may have left no running container at all.
  if (pinged === 0) failures.push('no running container on a knit network was left to ping');
  return { failures, pinged };
}
