// Names and the resolver together (issue 13): the address on the host's lo, the records, the servers. Made in two
// steps: the Names before the host's lease starts (its RemoteNames is a kind of the lease's record watch), started
// once the plugin socket answers.
import { startResolver, type Resolver } from '../dns/resolver.js';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDnsAddress } from '../datapath/dns-address.js';
import type { Op } from '../datapath/ops.js';
import type { Store } from '../store/types.js';
import type { RecordSink } from './publisher.js';
import { Names } from './service.js';

export interface NamesSettings {
  /** KNIT_DNS_ADDRESS. */
  address: string;
  /** The Docker engine's socket (KNIT_DOCKER_HOST). */
  dockerSocket: string;
  /** Where the upstream resolvers are read (KNIT_RESOLV_CONF; /etc/resolv.conf by default). */
  resolvConf?: string;
  /** The endpoint name dockerd 29+ sends in RequestAddress, by address (engine hints). */
  endpointName?: (ip: string) => string | undefined;
}

export interface NamesDeps {
  local: Store;
  hostId: string;
  /** The host's lease (HostLease), with an overlay: its records live and die with it, so a dead host's names go with it. */
  sink?: RecordSink;
  log: Logger;
}

export interface RunningNames {
  names: Names;
  resolver?: Resolver;
  stop(): Promise<void>;
}

/** Nothing read or started yet. */
export function makeNames(s: NamesSettings, d: NamesDeps): Names {
  return new Names({ local: d.local, hostId: d.hostId, sink: d.sink, dockerSocket: s.dockerSocket, resolver: s.address, endpointName: s.endpointName, log: d.log });
}

/** After the plugin socket answers: the engine may be waiting for knit at its own start. */
export async function startNames(names: Names, s: NamesSettings, d: { kernel: { apply(ops: Op[]): Promise<void> }; log: Logger }): Promise<RunningNames> {
  await names.start();
  let resolver: Resolver | undefined;
  try {
    await ensureDnsAddress({ kernel: d.kernel, address: s.address });
    resolver = await startResolver({ address: s.address, names, resolvConf: s.resolvConf, log: d.log });
  } catch (err) {
    // The networks work without it; names across hosts do not, and the log says why.
    d.log.error('knit\'s DNS resolver is not running: names across hosts will not resolve', { address: s.address, error: describe(err) });
  }
  return {
    names,
    resolver,
    async stop() {
      await resolver?.close();
      names.stop();
    },
  };
}
