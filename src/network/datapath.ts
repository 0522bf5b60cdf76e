// What the network layer asks of the kernel datapath, as an interface: handlers and the overlay depend on it,
// not on the concrete Kernel (and not on each other).
import type { LinkState, Op } from '../datapath/ops.js';
import type { VxlanEntries } from '../datapath/parse.js';

export interface Datapath {
  apply(ops: Op[]): Promise<void>;
  remove(ops: Op[]): Promise<void>;
  links(): Promise<LinkState[]>;
  vxlanEntries(dev: string): Promise<VxlanEntries>;
  /** Forgets tracked flows to these published ports and, given addresses, every flow from or to them. */
  flushConntrack(flows: Array<{ proto: string; port: number; family: 4 | 6 }>, addresses?: string[]): Promise<void>;
  setSysctl(name: string, value: string): Promise<void>;
}
