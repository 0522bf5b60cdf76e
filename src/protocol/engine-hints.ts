// What dockerd's calls reveal beyond the protocol's fields. No plugin call carries the engine version, but some
// options appear only from a release on: the first sign of a 29.x engine, and with it each endpoint's name.
import type { Logger } from '../log.js';

/** RequestAddress Options carry the endpoint's name from dockerd 29.0 on (moby#50586); 28.5 does not send it. */
export const ENDPOINT_NAME_OPTION = 'com.docker.network.endpoint.name';

export const ENGINE_29_WARNING =
  'dockerd is 29.0 or later (RequestAddress carries com.docker.network.endpoint.name). dockerd 29.0.0, 29.0.1 and ' +
  '29.0.2 crash ("sync: unlock of unlocked mutex") when a container whose gateway network has a remote driver such ' +
  'as knit stops: if `docker version` shows one of them, upgrade dockerd to 29.0.3 or later (moby#51558). The plugin ' +
  'protocol does not carry the exact version, so knit cannot tell those releases apart from later ones.';

/** Names kept at most: one per address held, released with it; a bound in case releases go missing. */
const MAX_NAMES = 65_536;

export interface EngineHints {
  requestAddress(options: Record<string, unknown> | null | undefined): void;
  /** After IPAM gave `address` (CIDR or bare): the endpoint name dockerd 29+ sent with the request, kept while it is held. */
  addressGiven(options: Record<string, unknown> | null | undefined, address: string): void;
  addressReleased(address: string): void;
  /** The endpoint (container) name dockerd 29+ gave for this address (bare IP), before any engine event about it. */
  endpointName(ip: string): string | undefined;
}

const bare = (address: string): string => address.split('/')[0];

/** Warns once per process, at the first call that shows a 29.x engine. */
export function engineHints(log: Logger): EngineHints {
  let warned = false;
  const names = new Map<string, string>();
  return {
    requestAddress(options) {
      if (warned || options?.[ENDPOINT_NAME_OPTION] === undefined) return;
      warned = true;
      log.warn(ENGINE_29_WARNING, { fixedIn: '29.0.3', affected: '29.0.0-29.0.2' });
    },
    addressGiven(options, address) {
      const name = options?.[ENDPOINT_NAME_OPTION];
      names.delete(bare(address));
      if (typeof name !== 'string' || !name) return;
      if (names.size >= MAX_NAMES) names.delete(names.keys().next().value!);
      names.set(bare(address), name);
    },
    addressReleased(address) {
      names.delete(bare(address));
    },
    endpointName: (ip) => names.get(ip),
  };
}
