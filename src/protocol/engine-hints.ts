// What dockerd's calls reveal about its version. No plugin call carries the engine version, but some options
// appear only from a release on; the one that matters is the first sign of a 29.x engine.
import type { Logger } from '../log.js';

/** RequestAddress Options carry the endpoint's name from dockerd 29.0 on (moby#50586). */
export const ENDPOINT_NAME_OPTION = 'com.docker.network.endpoint.name';

export const ENGINE_29_WARNING =
  'dockerd is 29.0 or later (RequestAddress carries com.docker.network.endpoint.name). dockerd 29.0.0, 29.0.1 and ' +
  '29.0.2 crash ("sync: unlock of unlocked mutex") when a container whose gateway network has a remote driver such ' +
  'as knit stops: if `docker version` shows one of them, upgrade dockerd to 29.0.3 or later (moby#51558). The plugin ' +
  'protocol does not carry the exact version, so knit cannot tell those releases apart from later ones.';

export interface EngineHints {
  requestAddress(options: Record<string, unknown> | null | undefined): void;
}

/** Warns once per process, at the first call that shows a 29.x engine. */
export function engineHints(log: Logger): EngineHints {
  let warned = false;
  return {
    requestAddress(options) {
      if (warned || options?.[ENDPOINT_NAME_OPTION] === undefined) return;
      warned = true;
      log.warn(ENGINE_29_WARNING, { fixedIn: '29.0.3', affected: '29.0.0-29.0.2' });
    },
  };
}
