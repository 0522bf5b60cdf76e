// Test-bed hosts with their own dockerd and knit, on an underlay of this file's own (so it can run beside the
// e2e overlay tests, whose underlay namespace has a fixed name), with etcd on it when asked.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { post } from '../../support/client.js';
import { startEtcd, type EtcdServer } from '../../support/etcd.js';
import { Knit } from '../../support/knit.js';
import { run, startHost, stopAll, type Host, type RunResult } from '../../support/testbed.js';

export const STORE_IP = '198.18.0.250';

export interface ClusterOptions {
  names: string[];
  /** etcd on the underlay (overlays possible), or each knit with its embedded store. */
  store: 'etcd' | 'local';
  /** Extra KNIT_* settings for every knit. */
  env?: Record<string, string>;
  liveRestore?: boolean;
}

export class FaultCluster {
  readonly knits: Knit[];

  private constructor(
    readonly hosts: Host[],
    readonly underlay: string | undefined,
    readonly etcd: EtcdServer | undefined,
    env: Record<string, string>,
  ) {
    this.knits = hosts.map((h) => new Knit(h, env));
  }

  static async start(o: ClusterOptions): Promise<FaultCluster> {
    const hosts: Host[] = [];
    let underlay: string | undefined;
    let etcd: EtcdServer | undefined;
    try {
      for (const name of o.names) {
        const h = await startHost({ name, liveRestore: o.liveRestore });
        // Real hosts run with FORWARD policy DROP (dockerd sets it when it turns forwarding on itself).
        await h.exec(['iptables', '-P', 'FORWARD', 'DROP']);
        hosts.push(h);
      }
      const env: Record<string, string> = { ...o.env };
      if (o.store === 'etcd') {
        underlay = `knt-ul-${o.names[0]}`;
        await makeUnderlay(underlay, hosts);
        etcd = await startEtcd({ netns: underlay, host: STORE_IP });
        Object.assign(env, { KNIT_STORE: `etcd://${etcd.endpoint}`, KNIT_ADVERTISE: 'ul0' });
      }
      const cluster = new FaultCluster(hosts, underlay, etcd, env);
      for (const k of cluster.knits) await k.start();
      return cluster;
    } catch (err) {
      await etcd?.dispose().catch(() => undefined);
      await stopAll().catch(() => undefined);
      if (underlay) await run(['ip', 'netns', 'del', underlay], { reject: false });
      throw err;
    }
  }

  docker(i: number, args: string[], opts: { timeoutMs?: number; reject?: boolean } = {}): Promise<RunResult> {
    return this.hosts[i].docker(args, opts);
  }

  /**
   * On every host: a knit bridge network `bridge` and a knit overlay `overlay` on `subnet`; and with `macvlan`, a knit
   * macvlan network on the underlay (parent ul0, its subnet, the store's address as router) whose --ip-range holds
   * the hosts' own addresses, which knit must never hand out.
   */
  async createNetworks(a: { bridge: string; overlay: string; subnet: string; macvlan?: string }): Promise<void> {
    const knit = ['network', 'create', '-d', 'knit', '--ipam-driver', 'knit'];
    const lan = ['-o', 'knit.mode=macvlan', '-o', 'parent=ul0', '--subnet', '198.18.0.0/24', '--ip-range', '198.18.0.0/25', '--gateway', STORE_IP];
    for (let i = 0; i < this.hosts.length; i++) {
      await this.docker(i, [...knit, a.bridge]);
      await this.docker(i, [...knit, '-o', 'knit.mode=overlay', '--subnet', a.subnet, a.overlay]);
      if (a.macvlan) await this.docker(i, [...knit, ...lan, a.macvlan]);
    }
  }

  /**
   * Reconcile and sweep now on host i (what `knit doctor` does). Just after a store fault the etcd client may still
   * refuse calls for a few seconds ("tries again within 5 s"), so a refusal is retried for a bounded time.
   */
  async doctor(i: number): Promise<void> {
    let last = '';
    for (const until = Date.now() + 30_000; Date.now() < until; await sleep(2_000)) {
      const r = await post(this.knits[i].socket, '/knit.Doctor', '{}', 60_000);
      if (r.status === 200) return;
      last = `${r.status}: ${r.raw}`;
    }
    throw new Error(`knit.Doctor on ${this.hosts[i].name} kept failing for 30 s: ${last}`);
  }

  /** Makes sure every knit runs (a crash loop may have left one down), then runs doctor everywhere. */
  async settle(): Promise<void> {
    for (const k of this.knits) if (!k.proc?.running()) await k.start();
    for (let i = 0; i < this.hosts.length; i++) await this.doctor(i);
  }

  /** Takes host i's underlay link down: it loses the store and the other hosts, nothing else. */
  async cut(i: number): Promise<void> {
    await this.hosts[i].exec(['ip', 'link', 'set', 'ul0', 'down']);
  }

  async mend(i: number): Promise<void> {
    await this.hosts[i].exec(['ip', 'link', 'set', 'ul0', 'up']);
  }

  async stop(): Promise<void> {
    for (const k of this.knits) await k.stop().catch(() => undefined);
    await this.etcd?.dispose().catch(() => undefined);
    await stopAll();
    if (this.underlay) await run(['ip', 'netns', 'del', this.underlay], { reject: false });
  }
}

/** A bridge in its own netns with the store's address on it, and a veth per host (`ul0` inside, 198.18.0.N/24). */
async function makeUnderlay(netns: string, hosts: Host[]): Promise<void> {
  if (existsSync(`/run/netns/${netns}`)) throw new Error(`netns ${netns} already exists: another run of this suite, or a crashed one (scripts/testbed-cleanup.sh)`);
  await run(['ip', 'netns', 'add', netns]);
  const ip = (...args: string[]) => run(['ip', '-n', netns, ...args]);
  await ip('link', 'set', 'lo', 'up');
  await ip('link', 'add', 'ul', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  await ip('link', 'set', 'ul', 'up');
  await ip('addr', 'add', `${STORE_IP}/24`, 'dev', 'ul');
  for (const [n, h] of hosts.entries()) {
    const address = `198.18.0.${n + 1}`;
    await run(['ip', 'link', 'add', 'ul0', 'netns', h.netns, 'type', 'veth', 'peer', 'name', `p-${h.name}`, 'netns', netns]);
    await ip('link', 'set', `p-${h.name}`, 'master', 'ul', 'up');
    await h.exec(['ip', 'addr', 'add', `${address}/24`, 'dev', 'ul0']);
    await h.exec(['ip', 'link', 'set', 'ul0', 'up']);
    h.underlayIp = address;
  }
}
