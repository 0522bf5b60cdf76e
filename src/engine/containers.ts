// What the engine says about a running container, reduced to what knit's names need (a pure translation).

/** The parts of GET /containers/{id}/json that knit reads (API 1.41 and later). */
export interface InspectReply {
  Id?: string;
  Name?: string;
  State?: { Running?: boolean };
  Config?: { Hostname?: string };
  NetworkSettings?: {
    Networks?: Record<string, { NetworkID?: string; EndpointID?: string; Aliases?: string[] | null; DNSNames?: string[] | null } | null> | null;
  };
}

export interface ContainerEndpoint {
  endpointId: string;
  networkId: string;
  /** Lower-case DNS names: the container's name, its aliases on this network, its short ID, its hostname. */
  names: string[];
}

export interface ContainerNames {
  id: string;
  endpoints: ContainerEndpoint[];
}

const DOCKER_ID = /^[0-9a-f]{64}$/;
/** What a DNS name can be (letters, digits, '-', '_', dots between labels); anything else is never asked for. */
const NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export const isDockerId = (id: unknown): id is string => typeof id === 'string' && DOCKER_ID.test(id);

/** Lower-cased, de-duplicated, invalid ones dropped, first-seen order kept (the first is the container's name). */
export function cleanNames(raw: Array<string | undefined>): string[] {
  const out: string[] = [];
  for (const r of raw) {
    const n = r?.replace(/^\//, '').toLowerCase();
    if (n && NAME.test(n) && !out.includes(n)) out.push(n);
  }
  return out;
}

/**
 * DNSNames (API 1.44, Docker 25) is exactly what Docker's own resolver serves; older engines (20.10 speaks 1.41)
 * have no such field, so the same list is built from the name, the network's aliases and the hostname.
 */
export function namesFromInspect(c: InspectReply): ContainerNames | undefined {
  if (!isDockerId(c.Id) || !c.State?.Running) return undefined;
  const endpoints: ContainerEndpoint[] = [];
  for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) {
    if (!n || !isDockerId(n.EndpointID) || !isDockerId(n.NetworkID)) continue;
    const names = Array.isArray(n.DNSNames)
      ? cleanNames([c.Name, ...n.DNSNames])
      : cleanNames([c.Name, ...(n.Aliases ?? []), c.Id.slice(0, 12), c.Config?.Hostname]);
    endpoints.push({ endpointId: n.EndpointID, networkId: n.NetworkID, names });
  }
  return { id: c.Id, endpoints };
}
