// Pure: kernel operations rendered as `ip -batch` and `bridge -batch` lines, their inverses, and how to name them.
import type { Op } from './ops.js';
import {
  validateAddrLabel, validateAlias, validateCidr, validateFdbMac, validateIfName, validateIp, validateMac, validateMtu, validatePort, validateVni, ZERO_MAC,
} from './names.js';
import { describeMacvlanOp, renderMacvlanOp } from './render-macvlan.js';

export type BatchTool = 'ip' | 'bridge';

/** One batch line and the index of the op it came from (an op may render to more than one line). */
export interface BatchLine {
  text: string;
  index: number;
}

export interface Batches {
  ip: BatchLine[];
  bridge: BatchLine[];
}

// The kernel ignores IFLA_IFALIAS in a link creation request (checked here, kernel 6.18): the alias needs its own line.
const aliasLine = (name: string, alias: string): string => `link set ${name} alias ${validateAlias(alias)}`;
const up = (on: boolean | undefined): string[] => (on ? ['up'] : []);

type Rendered = { tool: BatchTool; lines: string[] };
const ip = (...lines: string[][]): Rendered => ({ tool: 'ip', lines: lines.map((l) => l.join(' ')) });

/**
 * The ops that create a link: one `ip link add` with everything the kernel takes at creation (mtu,
 * address, master, up; for a veth the peer's mtu and address too), then the alias. Generic attributes
 * must come before `type`: after it, ip hands every word to the link type's own parser.
 */
function renderCreate(op: Extract<Op, { op: 'bridge-add' | 'vxlan-add' | 'veth-add' }>): Rendered {
  const name = validateIfName(op.name);
  const mtu = String(validateMtu(op.mtu));
  const head = ['link', 'add', name, 'mtu', mtu];
  switch (op.op) {
    case 'bridge-add': {
      const mac = op.mac === undefined ? [] : ['address', validateMac(op.mac)];
      return ip([...head, ...mac, ...up(op.up), 'type', 'bridge'], [aliasLine(name, op.alias)]);
    }
    case 'vxlan-add': {
      // Entries are programmed from the store: no learning, and `proxy` answers ARP/ND from the neighbour table.
      const vxlan = ['type', 'vxlan', 'id', String(validateVni(op.vni)), 'local', validateIp(op.local, 'VXLAN local address'),
        'dstport', String(validatePort(op.port)), 'nolearning', 'proxy'];
      return ip([...head, 'master', validateIfName(op.master), ...up(op.up), ...vxlan], [aliasLine(name, op.alias)]);
    }
    case 'veth-add': {
      const peer = ['peer', 'name', validateIfName(op.peer), 'mtu', mtu, ...(op.peerMac === undefined ? [] : ['address', validateMac(op.peerMac)])];
      return ip([...head, 'master', validateIfName(op.master), ...up(op.up), 'type', 'veth', ...peer], [aliasLine(name, op.alias)]);
    }
  }
}

/** Validates every field, then renders one op as the lines of the tool that applies it. */
export function renderOp(op: Op): Rendered {
  switch (op.op) {
    case 'bridge-add':
    case 'vxlan-add':
    case 'veth-add':
      return renderCreate(op);
    case 'addr-add':
    case 'addr-del': {
      const cidr = validateCidr(op.cidr);
      // Without nodad an IPv6 gateway stays "tentative" for a second or more and cannot be used as a source.
      const nodad = op.op === 'addr-add' && cidr.includes(':') ? ['nodad'] : [];
      const label = op.op === 'addr-add' && op.label !== undefined ? ['label', validateAddrLabel(op.label, op.dev)] : [];
      return ip(['addr', op.op === 'addr-add' ? 'add' : 'del', cidr, 'dev', validateIfName(op.dev), ...label, ...nodad]);
    }
    case 'macvlan-add':
    case 'vlan-add':
    case 'route-add':
    case 'route-del':
      return ip(...renderMacvlanOp(op));
    case 'link-master':
      return ip(['link', 'set', validateIfName(op.name), 'master', validateIfName(op.master)]);
    case 'link-up':
      return ip(['link', 'set', validateIfName(op.name), 'up']);
    case 'link-mtu':
      return ip(['link', 'set', validateIfName(op.name), 'mtu', String(validateMtu(op.mtu))]);
    case 'link-del':
      return ip(['link', 'del', validateIfName(op.name)]);
    case 'neigh-add':
      // replace, not add: re-applying after a restart must succeed, and `neigh add` on an existing entry aborts the whole batch.
      return ip(['neigh', 'replace', validateIp(op.ip), 'lladdr', validateMac(op.mac), 'dev', validateIfName(op.dev), 'nud', 'permanent']);
    case 'neigh-del':
      // `neigh del` of an absent entry makes ip exit at once, even with -force; a flush of one address is idempotent.
      return ip(['neigh', 'flush', 'to', validateIp(op.ip), 'dev', validateIfName(op.dev), 'nud', 'all']);
    case 'fdb-add':
    case 'fdb-del': {
      const mac = validateFdbMac(op.mac);
      // All-zero entries list every remote host (append adds one more); a container's MAC has one host (replace moves it).
      const verb = op.op === 'fdb-del' ? 'del' : mac === ZERO_MAC ? 'append' : 'replace';
      const tail = op.op === 'fdb-del' ? ['self'] : ['self', 'permanent'];
      const line = ['fdb', verb, mac, 'dev', validateIfName(op.dev), 'dst', validateIp(op.dst, 'VXLAN destination'), ...tail];
      return { tool: 'bridge', lines: [line.join(' ')] };
    }
  }
}

/**
 * Renders every op (so any invalid field is refused before a process runs) into the two batches.
 * Neighbour lines go last in the ip batch: they are the only lines after which ip can stop without
 * saying which line failed, and with them last every earlier line is known to have succeeded.
 */
export function renderBatches(ops: Op[]): Batches {
  const batches: Batches = { ip: [], bridge: [] };
  const neigh: BatchLine[] = [];
  ops.forEach((op, index) => {
    const { tool, lines } = renderOp(op);
    const target = op.op.startsWith('neigh-') ? neigh : batches[tool];
    for (const text of lines) target.push({ text, index });
  });
  batches.ip.push(...neigh);
  return batches;
}

/** The op that takes back a `*-add` op; deleting a link cannot be taken back. */
export function undoOp(op: Op): Op | undefined {
  switch (op.op) {
    case 'bridge-add':
    case 'vxlan-add':
    case 'veth-add':
    case 'macvlan-add':
    case 'vlan-add':
      return { op: 'link-del', name: op.name };
    case 'route-add':
      return { op: 'route-del', dst: op.dst, dev: op.dev };
    case 'addr-add':
      return { op: 'addr-del', dev: op.dev, cidr: op.cidr };
    case 'fdb-add':
      return { op: 'fdb-del', dev: op.dev, mac: op.mac, dst: op.dst };
    case 'neigh-add':
      return { op: 'neigh-del', dev: op.dev, ip: op.ip };
    default:
      return undefined;
  }
}

/** What an op does, in words for an error message. */
export function describeOp(op: Op): string {
  switch (op.op) {
    case 'bridge-add': return `creating bridge ${op.name}`;
    case 'vxlan-add': return `creating VXLAN device ${op.name} (VNI ${op.vni})`;
    case 'veth-add': return `creating veth pair ${op.name}/${op.peer}`;
    case 'macvlan-add':
    case 'vlan-add':
    case 'route-add':
    case 'route-del':
      return describeMacvlanOp(op);
    case 'addr-add': return `adding address ${op.cidr} to ${op.dev}`;
    case 'addr-del': return `removing address ${op.cidr} from ${op.dev}`;
    case 'link-master': return `attaching ${op.name} to ${op.master}`;
    case 'link-up': return `bringing ${op.name} up`;
    case 'link-mtu': return `setting the MTU of ${op.name} to ${op.mtu}`;
    case 'link-del': return `deleting link ${op.name}`;
    case 'fdb-add': return `adding forwarding entry ${op.mac} via ${op.dst} on ${op.dev}`;
    case 'fdb-del': return `removing forwarding entry ${op.mac} via ${op.dst} on ${op.dev}`;
    case 'neigh-add': return `adding neighbour ${op.ip} (${op.mac}) on ${op.dev}`;
    case 'neigh-del': return `removing neighbour ${op.ip} on ${op.dev}`;
  }
}
