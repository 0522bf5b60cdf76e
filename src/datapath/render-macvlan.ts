// Pure: the macvlan network ops (children, 802.1q parents, host routes) rendered as `ip -batch` lines.
import { badRequest } from '../errors.js';
import type { MacvlanMode, Op } from './ops.js';
import { validateAlias, validateCidr, validateIfName, validateIp, validateMac, validateMtu } from './names.js';

export type MacvlanOp = Extract<Op, { op: 'macvlan-add' | 'vlan-add' | 'route-add' | 'route-del' }>;

const MODES: readonly MacvlanMode[] = ['bridge', 'private', 'vepa', 'passthru'];

export function validateMacvlanMode(value: unknown): MacvlanMode {
  if (!MODES.includes(value as MacvlanMode)) throw badRequest(`macvlan mode ${JSON.stringify(value)} is not one of ${MODES.join(', ')}`);
  return value as MacvlanMode;
}

/** 802.1q VLAN IDs 0 and 4095 are reserved by the standard. */
export function validateVid(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 4094) {
    throw badRequest(`VLAN ID ${JSON.stringify(value)} is not a whole number between 1 and 4094`);
  }
  return value;
}

/** A host route is for one address: a /32 (IPv4) or /128 (IPv6). */
function hostRoute(dst: string): string {
  const cidr = validateCidr(dst, 'route destination');
  if (!cidr.endsWith(cidr.includes(':') ? '/128' : '/32')) throw badRequest(`route destination ${JSON.stringify(dst)} is not a single address (/32 or /128)`);
  return cidr;
}

/** Each op as the `ip` lines that apply it; creating ops name the new link's alias on a line of its own (see render.ts). */
export function renderMacvlanOp(op: MacvlanOp): string[][] {
  switch (op.op) {
    case 'macvlan-add': {
      const name = validateIfName(op.name);
      const mac = op.mac === undefined ? [] : ['address', validateMac(op.mac)];
      const line = ['link', 'add', 'link', validateIfName(op.link), 'name', name, 'mtu', String(validateMtu(op.mtu)), ...mac,
        ...(op.up ? ['up'] : []), 'type', 'macvlan', 'mode', validateMacvlanMode(op.mode)];
      return [line, ['link', 'set', name, 'alias', validateAlias(op.alias)]];
    }
    case 'vlan-add':
      return [['link', 'add', 'link', validateIfName(op.link), 'name', validateIfName(op.name), ...(op.up ? ['up'] : []),
        'type', 'vlan', 'id', String(validateVid(op.vid))]];
    case 'route-add':
      // replace: re-applying after a restart must succeed.
      return [['route', 'replace', hostRoute(op.dst), 'dev', validateIfName(op.dev), ...(op.src ? ['src', validateIp(op.src, 'route source')] : [])]];
    case 'route-del':
      // A flush of one route is idempotent (`route del` of an absent route fails with "No such process").
      return [['route', 'flush', 'exact', hostRoute(op.dst), 'dev', validateIfName(op.dev)]];
  }
}

export function describeMacvlanOp(op: MacvlanOp): string {
  switch (op.op) {
    case 'macvlan-add': return `creating macvlan ${op.name} on ${op.link} (mode ${op.mode})`;
    case 'vlan-add': return `creating 802.1q sub-interface ${op.name} (VLAN ${op.vid} on ${op.link})`;
    case 'route-add': return `adding route ${op.dst} via ${op.dev}`;
    case 'route-del': return `removing route ${op.dst} via ${op.dev}`;
  }
}
