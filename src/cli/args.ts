// The command line of `knit` (pure: words in, a command out); main.ts runs what it returns.
export type Command =
  | { kind: 'daemon' }
  | { kind: 'help' }
  | { kind: 'ask'; what: 'status' | 'doctor' | 'rotate-key'; json: boolean; socket?: string }
  | { kind: 'usage'; problem: string };

export const USAGE = `usage: knit [COMMAND] [OPTIONS]

Commands:
  daemon           run the network and IPAM plugin in the foreground (the default with no command)
  status           what this host's knit serves: store and lease, networks, endpoints and published
                   ports, overlay peers, call timings, processes spawned, memory
  doctor           reconcile knit's records with the kernel now and say what was found and fixed
  rotate-key       give this host's WireGuard (encrypted overlays) a new key pair, make-before-break
  help             this text

Options of status, doctor and rotate-key:
  --json           the full document as JSON, for scripts
  --socket PATH    the plugin socket to ask (default: KNIT_SOCKET, else /run/docker/plugins/knit.sock;
                   a managed plugin's is /run/docker/plugins/PLUGIN-ID/knit.sock)

The daemon's settings are KNIT_* environment variables (README, "Settings").
`;

const HELP = new Set(['help', '--help', '-h']);

function askOptions(what: 'status' | 'doctor' | 'rotate-key', rest: string[]): Command {
  let json = false;
  let socket: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    if (HELP.has(word)) return { kind: 'help' };
    if (word === '--json') json = true;
    else if (word === '--socket' || word.startsWith('--socket=')) {
      socket = word === '--socket' ? rest[++i] : word.slice('--socket='.length);
      if (!socket?.startsWith('/')) return { kind: 'usage', problem: '--socket needs the absolute path of a socket' };
    } else return { kind: 'usage', problem: `knit ${what} does not take "${word}"` };
  }
  return { kind: 'ask', what, json, ...(socket ? { socket } : {}) };
}

export function parseArgs(argv: string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: 'daemon' };
  if (HELP.has(first)) return { kind: 'help' };
  if (first === 'status' || first === 'doctor' || first === 'rotate-key') return askOptions(first, rest);
  if (first === 'daemon') {
    if (rest.length === 0) return { kind: 'daemon' };
    return HELP.has(rest[0]) ? { kind: 'help' } : { kind: 'usage', problem: `knit daemon takes no arguments (settings are KNIT_* variables), not "${rest[0]}"` };
  }
  return { kind: 'usage', problem: `unknown command "${first}"` };
}
