// Pure: the iptables chains that give knit networks forwarding, isolation, NAT and published ports.
import type { Chain, Jump, Rule } from '../datapath/firewall.js';
import type { EndpointRecord, NetworkRecord } from './records.js';

export type FamilyNo = 4 | 6;

export const CHAINS = {
  forward: 'KNIT-FORWARD',
  foreign: 'KNIT-FOREIGN',
  postrouting: 'KNIT-POSTROUTING',
  dnat: 'KNIT-DNAT',
  in: (id: string) => `KNIT-IN-${id.slice(0, 12)}`,
  out: (id: string) => `KNIT-OUT-${id.slice(0, 12)}`,
};

/** knit's chains are entered from the built-in ones through these jumps, kept first. */
export const jumps = (family: FamilyNo): Jump[] => [
  { table: 'filter', from: 'FORWARD', to: CHAINS.forward },
  { table: 'nat', from: 'POSTROUTING', to: CHAINS.postrouting },
  { table: 'nat', from: 'PREROUTING', to: CHAINS.dnat, rule: { dstLocal: true } },
  // Loopback destinations would need route_localnet; Docker serves those with its userland proxy.
  { table: 'nat', from: 'OUTPUT', to: CHAINS.dnat, rule: { dstLocal: true, notDst: family === 4 ? '127.0.0.0/8' : '::1' } },
];

/** Docker's own bridges: docker0 and "br-" + 12 hex of a Docker network ID. */
export const isDockerBridge = (name: string): boolean => name === 'docker0' || /^br-[0-9a-f]{12}$/.test(name);

const subnetsOf = (net: NetworkRecord, family: FamilyNo): string[] => (family === 4 ? net.ipv4 : net.ipv6).map((s) => s.subnet);
const addrOf = (ep: EndpointRecord, family: FamilyNo): string | undefined => (family === 4 ? ep.address : ep.addressV6)?.split('/')[0];

/**
 * Traffic entering a network's bridge: replies, its own members (if ICC), published ports; nothing else. With ICC
 * off, members are dropped before replies are accepted: no flow between two members is ever allowed, and a
 * tracked flow left by earlier holders of their addresses (ICMP echoes of two busybox pings share an ID) must
 * not let one through.
 */
function inboundRules(net: NetworkRecord): Rule[] {
  const rules: Rule[] = [];
  if (!net.icc) rules.push({ in: net.bridge, target: 'DROP' });
  rules.push({ ctstate: ['RELATED', 'ESTABLISHED'], target: 'ACCEPT' });
  if (net.icc) rules.push({ in: net.bridge, target: 'ACCEPT' });
  if (!net.internal) rules.push({ ctstate: ['DNAT'], target: 'ACCEPT' });
  rules.push({ target: 'DROP' });
  return rules;
}

/** Traffic leaving a network for a non-knit interface: out, unless internal or bound for Docker's bridges. */
function outboundRules(net: NetworkRecord): Rule[] {
  if (net.internal) return [{ target: 'DROP' }];
  return [{ target: CHAINS.foreign }, { target: 'ACCEPT' }];
}

export function planNetworkChains(net: NetworkRecord): Chain[] {
  return [
    { table: 'filter', name: CHAINS.in(net.id), rules: inboundRules(net) },
    { table: 'filter', name: CHAINS.out(net.id), rules: outboundRules(net) },
  ];
}

/** The shared chains, rewritten whenever a network, a mapping or Docker's set of bridges changes. */
export function planShared(a: { nets: NetworkRecord[]; eps: EndpointRecord[]; dockerBridges: string[]; family: FamilyNo }): Chain[] {
  const { nets, eps, dockerBridges, family } = a;
  const forward: Rule[] = [
    ...nets.map((n) => ({ out: n.bridge, target: CHAINS.in(n.id) })),
    ...nets.map((n) => ({ in: n.bridge, target: CHAINS.out(n.id) })),
  ];
  const foreign: Rule[] = dockerBridges.map((b) => ({ out: b, target: 'DROP' }));
  const post: Rule[] = [];
  for (const n of nets.filter((x) => !x.internal)) {
    for (const s of subnetsOf(n, family)) {
      // Hairpin: a member reaching a published port of its own network must see the reply NATed back.
      post.push({ src: s, out: n.bridge, ctstate: ['DNAT'], target: 'MASQUERADE' });
      if (n.masquerade) post.push({ src: s, notOut: n.bridge, target: 'MASQUERADE' });
    }
  }
  const byId = new Map(nets.map((n) => [n.id, n]));
  const dnat: Rule[] = [];
  for (const ep of eps) {
    const net = byId.get(ep.networkId);
    const ip = addrOf(ep, family);
    if (!net || net.internal || !ip) continue;
    for (const p of ep.ports) {
      if ((family === 4) !== !p.hostIp.includes(':')) continue;
      const to = family === 4 ? `${ip}:${p.containerPort}` : `[${ip}]:${p.containerPort}`;
      const rule: Rule = { proto: p.proto, dport: p.hostPort, target: 'DNAT', toDestination: to };
      if (p.hostIp !== '0.0.0.0' && p.hostIp !== '::') rule.dst = p.hostIp;
      dnat.push(rule);
    }
  }
  return [
    { table: 'filter', name: CHAINS.forward, rules: forward },
    { table: 'filter', name: CHAINS.foreign, rules: foreign },
    { table: 'nat', name: CHAINS.postrouting, rules: post },
    { table: 'nat', name: CHAINS.dnat, rules: dnat },
  ];
}
