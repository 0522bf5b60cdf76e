// Pure: the -o options of a macvlan network (Docker's names: parent, macvlan_mode; knit's host leg), validated.
import type { MacvlanMode } from '../../datapath/ops.js';
import { validateIfName } from '../../datapath/names.js';
import { validateMacvlanMode, validateVid } from '../../datapath/render-macvlan.js';
import { badRequest, KnitError } from '../../errors.js';

export const MACVLAN_OPT = {
  parent: 'parent',
  mode: 'macvlan_mode',
  hostLeg: 'knit.macvlan.host',
} as const;

/** Bridge options mean nothing on a macvlan network (no bridge, no NAT, no published ports): refused, not ignored. */
const BRIDGE_ONLY = [
  'com.docker.network.bridge.name',
  'com.docker.network.bridge.enable_icc',
  'com.docker.network.bridge.enable_ip_masquerade',
  'com.docker.network.bridge.host_binding_ipv4',
];

export interface MacvlanSpec {
  /** The host interface the containers' macvlans hang off. */
  parent: string;
  mode: MacvlanMode;
  /** A macvlan of the parent on the host with a route per local container, so the host reaches them. */
  hostLeg: boolean;
  /** Set when `parent` is named IF.VID: if it does not exist, knit makes it as an 802.1q sub-interface of IF. */
  vlan?: { link: string; vid: number };
}

/** The macvlan part of a network's spec; `options` are the -o options, already checked to be known names. */
export function macvlanSpec(options: Record<string, string>, parseBool: (key: string, value: string) => boolean): MacvlanSpec {
  for (const key of BRIDGE_ONLY) {
    if (options[key] !== undefined) throw badRequest(`option ${key} does not apply to knit.mode=macvlan networks (they have no bridge, NAT or published ports)`);
  }
  const parent = options[MACVLAN_OPT.parent];
  if (parent === undefined || parent === '') {
    throw badRequest('knit.mode=macvlan needs -o parent=IF: the host interface on the LAN the containers join');
  }
  const spec: MacvlanSpec = { parent: named(parent), mode: mode(options[MACVLAN_OPT.mode]), hostLeg: false };
  if (options[MACVLAN_OPT.hostLeg] !== undefined) spec.hostLeg = parseBool(MACVLAN_OPT.hostLeg, options[MACVLAN_OPT.hostLeg]);
  if (spec.hostLeg && spec.mode !== 'bridge') {
    // The kernel delivers between macvlans of one parent only when both are in bridge mode.
    throw badRequest(`option ${MACVLAN_OPT.hostLeg}=true needs ${MACVLAN_OPT.mode}=bridge (the host leg cannot reach ${spec.mode} containers)`);
  }
  const vlan = /^(.+)\.(\d{1,4})$/.exec(spec.parent);
  if (vlan) spec.vlan = { link: named(vlan[1]), vid: vid(vlan[2]) };
  return spec;
}

/** Options that only a macvlan network takes, given on another kind: refused naming them. */
export function refuseMacvlanOptions(options: Record<string, string>, mode: string): void {
  for (const key of Object.values(MACVLAN_OPT)) {
    if (options[key] !== undefined) throw badRequest(`option ${key} only applies to knit.mode=macvlan networks, not ${mode}`);
  }
}

function named(parent: string): string {
  try {
    return validateIfName(parent);
  } catch (err) {
    throw badRequest(`option ${MACVLAN_OPT.parent}: ${(err as KnitError).message}`);
  }
}

function mode(value: string | undefined): MacvlanMode {
  if (value === undefined || value === '') return 'bridge';
  try {
    return validateMacvlanMode(value);
  } catch {
    throw badRequest(`option ${MACVLAN_OPT.mode}="${value.slice(0, 100)}" is not a macvlan mode; use bridge, private, vepa or passthru`);
  }
}

function vid(text: string): number {
  try {
    return validateVid(Number(text));
  } catch {
    throw badRequest(`option ${MACVLAN_OPT.parent}: VLAN ID ${text} (after the dot) must be from 1 to 4094`);
  }
}
