// Who leads the liveness checks (LiveHosts, fed like every other host record) and what a tick does: the leader
// checks at every tick, the others only on every FULL_CHECK_EVERY-th; a failed check is logged, never thrown.
import { FULL_CHECK_EVERY, livenessTick, type LivenessDeps } from '../../src/liveness.js';
import { LiveHosts } from '../../src/network/overlay/live-hosts.js';
import type { HostLease } from '../../src/network/overlay/lease.js';
import { recordingLog } from './ipam-bed.js';

const entry = (key: string) => ({ key, value: '{}', revision: 1 });

describe('LiveHosts', () => {
  test('the lowest live ID leads; this host\'s own key and keys below a host are not hosts', async () => {
    const live = new LiveHosts('bb');
    expect(live.hostOf('hosts/bb')).toBeUndefined();
    expect(live.hostOf('hosts/aa/x')).toBeUndefined();
    expect(live.hostOf('overlay/aa')).toBeUndefined();
    expect(live.hostOf('hosts/aa')).toBe('aa');
    expect(live.leads()).toBe(true);
    await live.reset([entry('hosts/aa'), entry('hosts/bb'), entry('hosts/cc')]);
    expect([live.others(), live.leads()]).toEqual([2, false]);
    live.change({ type: 'delete', key: 'hosts/aa', revision: 2 });
    expect([live.others(), live.leads()]).toEqual([1, true]);
    live.change({ type: 'put', key: 'hosts/a0', value: '{}', revision: 3 });
    expect(live.leads()).toBe(false);
    // A listing after a reconnect replaces what was known.
    await live.reset([entry('hosts/cc')]);
    expect([live.others(), live.leads()]).toEqual([1, true]);
  });

  test('every listing and change is told to the listeners, with the live hosts as they now are', async () => {
    const live = new LiveHosts('bb');
    const told: string[][] = [];
    live.onChange(() => told.push([...live.hosts()].sort()));
    await live.reset([entry('hosts/aa'), entry('hosts/bb'), entry('hosts/cc')]);
    live.change({ type: 'put', key: 'hosts/dd', value: '{}', revision: 2 });
    live.change({ type: 'delete', key: 'hosts/aa', revision: 3 });
    expect(told).toEqual([['aa', 'cc'], ['aa', 'cc', 'dd'], ['cc', 'dd']]);
  });
});

describe('livenessTick', () => {
  const bed = (o: { leads: boolean; reclaimed?: string[]; fail?: boolean }) => {
    const calls: string[] = [];
    const live = new LiveHosts(o.leads ? 'aa' : 'zz');
    void live.reset([entry('hosts/mm')]);
    const { log, lines } = recordingLog();
    const deps: LivenessDeps = {
      lease: { liveHosts: async () => (calls.push('liveHosts'), new Set(['mm'])) } as unknown as HostLease,
      live,
      ipam: {
        reclaimLost: async (a) => {
          calls.push(`reclaim live=${[...a.live]} after=${a.afterMs}`);
          if (o.fail) throw new Error('etcd did not answer');
          return o.reclaimed ?? [];
        },
      },
      segments: { forgetHosts: async (h) => void calls.push(`segments ${h}`) },
      tunnel: { forgetHosts: async (h) => void calls.push(`tunnel ${h}`) },
      hostAddrs: { forget: async (h) => void calls.push(`forget ${h}`), reload: async () => void calls.push('reload') },
      log,
      afterMs: 60_000,
    };
    return { deps, calls, lines };
  };

  test('the leader checks at every tick and reads the host addresses again only when it reclaimed someone', async () => {
    const { deps, calls } = bed({ leads: true });
    expect(await livenessTick(deps, 1)).toBe(true);
    expect(calls).toEqual(['liveHosts', 'reclaim live=mm after=60000', 'segments ', 'tunnel ', 'forget ']);
    const r = bed({ leads: true, reclaimed: ['gone'] });
    await livenessTick(r.deps, 2);
    expect(r.calls.slice(2)).toEqual(['segments gone', 'tunnel gone', 'forget gone', 'reload']);
  });

  test('another host does nothing but on every FULL_CHECK_EVERY-th tick, when it checks as the leader does', async () => {
    const { deps, calls } = bed({ leads: false });
    for (let t = 1; t < FULL_CHECK_EVERY; t++) expect(await livenessTick(deps, t)).toBe(false);
    expect(calls).toEqual([]);
    expect(await livenessTick(deps, FULL_CHECK_EVERY)).toBe(true);
    expect(calls).toEqual(['liveHosts', 'reclaim live=mm after=60000', 'segments ', 'tunnel ', 'forget ', 'reload']);
  });

  test('a failed check is logged and the tick resolves', async () => {
    const { deps, calls, lines } = bed({ leads: true, fail: true });
    expect(await livenessTick(deps, 1)).toBe(true);
    expect(calls).toEqual(['liveHosts', 'reclaim live=mm after=60000']);
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', message: 'liveness check failed', meta: { error: expect.stringContaining('etcd did not answer') } })]);
  });
});
