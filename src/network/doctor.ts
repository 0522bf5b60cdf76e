// Brings the kernel back in line with the records (at start, and on demand) and reports what it fixed.
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { IptablesFirewall } from './firewall.js';
import { isDockerBridge } from './firewall-plan.js';
import { planReconcile } from './reconcile.js';
import type { Datapath } from './datapath.js';
import type { NetworkDriver } from './service.js';

export interface DoctorReport {
  findings: string[];
  repaired: number;
  removed: number;
  failures: string[];
  firewallJumpsFixed: number;
}

export async function reconcile(a: { driver: NetworkDriver; kernel: Datapath; firewall: IptablesFirewall; log: Logger; initial: boolean }): Promise<DoctorReport> {
  const { driver, kernel, firewall, log } = a;
  // A link still being removed would look like one without a record.
  await driver.settled();
  const [nets, eps, links, made] = await Promise.all([driver.networks(), driver.endpoints(), kernel.links(), driver.macvlan.made()]);
  const plan = planReconcile({ nets, eps, links, made });
  const report: DoctorReport = { findings: plan.findings, repaired: 0, removed: 0, failures: [], firewallJumpsFixed: 0 };
  for (const r of plan.repairs) {
    try {
      await kernel.apply(r.ops);
      report.repaired++;
    } catch (err) {
      report.failures.push(`${r.finding}: ${describe(err)}`);
    }
  }
  if (plan.orphans.length) {
    await kernel.remove(plan.orphans);
    report.removed = plan.orphans.length;
  }
  for (const net of nets) {
    await driver.macvlan.tuneHostLeg(net).catch((err) => report.failures.push(`host leg ${net.bridge}: ${describe(err)}`));
  }
  if (plan.unusedParents.length) {
    await driver.macvlan.drop(plan.unusedParents);
    report.removed += plan.unusedParents.length;
  }
  const dockerBridges = links.filter((l) => l.kind === 'bridge' && isDockerBridge(l.name)).map((l) => l.name).sort();
  if (a.initial) {
    await firewall.init(nets, eps, dockerBridges);
  } else {
    firewall.setDockerBridges(dockerBridges);
    firewall.forget();
    for (const n of nets) await firewall.syncNetwork(n, eps.filter((e) => e.networkId === n.id));
    await firewall.syncShared();
    report.firewallJumpsFixed = (await firewall.ensureJumps(4)) + (await firewall.ensureJumps(6));
  }
  if (report.findings.length || report.failures.length) log.info('reconciled', { ...report });
  return report;
}
