// Who leads the liveness checks (LiveHosts, fed like every other host record), when each host checks
// (CheckSchedule) and what a check does; a failed check is logged, never thrown.
import { CheckSchedule, FULL_CHECK_EVERY, livenessTick, type LivenessDeps } from '../../src/liveness.js';
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

describe('CheckSchedule', () => {
  const INTERVAL = 5_000;
  const AFTER = 60_000;
  const schedule = (id: string, hosts: string[], phase = 1) => {
    const clock = { now: 1_000_000 };
    const live = new LiveHosts(id);
    void live.reset(hosts.map((h) => entry(`hosts/${h}`)));
    const s = new CheckSchedule({ live, afterMs: AFTER, intervalMs: INTERVAL, phase, now: () => clock.now });
    /** Ticks from..to (inclusive), one interval apart: the ticks that ran a check, with their kind. */
    const run = (from: number, to: number) => {
      const ran: string[] = [];
      for (let t = from; t <= to; t++, clock.now += INTERVAL) {
        const kind = s.at(t);
        if (kind) ran.push(`${t}:${kind}`);
      }
      return ran;
    };
    return { s, live, clock, run };
  };

  test('the leader checks at the first tick, then not while nothing changes but on its own tick once a minute', () => {
    const { run } = schedule('aa', ['mm'], 1);
    // Phase 1: its own check falls on ticks 11, 23, ...
    expect(run(1, 24)).toEqual(['1:lead', '11:full', '23:full']);
  });

  test('a change of the live hosts makes the leader check at the next tick, and again once a quarantine can have run out', () => {
    const { live, run } = schedule('aa', ['mm', 'nn'], 1);
    expect(run(1, 5)).toEqual(['1:lead']);
    live.change({ type: 'delete', key: 'hosts/nn', revision: 2 });
    // AFTER + INTERVAL later is 13 ticks later: tick 6 is the next, 6 + 13 = 19 the deadline's.
    expect(run(6, 30)).toEqual(['6:lead', '11:full', '19:lead', '23:full']);
  });

  test('another host checks on its own tick only, changes or not; a failed check makes only the leader retry', () => {
    const { s, live, run } = schedule('zz', ['mm'], 1);
    live.change({ type: 'put', key: 'hosts/nn', value: '{}', revision: 2 });
    s.retry();
    expect(run(1, 30)).toEqual(['11:full', '23:full']);
    const leader = schedule('aa', ['mm'], 1);
    expect(leader.run(1, 3)).toEqual(['1:lead']);
    leader.s.retry();
    expect(leader.run(4, 6)).toEqual(['4:lead']);
  });

  test('beyond 12 hosts a host\'s own check comes less often: the cluster as a whole runs about one a tick', () => {
    const ids = Array.from({ length: 99 }, (_, i) => `h${String(i).padStart(3, '0')}`);
    const { s, run } = schedule('zz', ids, 0);
    expect(s.period()).toBe(108);
    expect(run(1, 216)).toEqual(['108:full', '216:full']);
    // Positive control: with 11 others, once a minute.
    expect(schedule('zz', ids.slice(0, 11), 0).s.period()).toBe(12);
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
      schedule: new CheckSchedule({ live, afterMs: 60_000, intervalMs: 5_000, phase: 0 }),
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

  test('the leader\'s check reads the host addresses again only when it reclaimed someone', async () => {
    const { deps, calls } = bed({ leads: true });
    expect(await livenessTick(deps, 1)).toBe(true);
    expect(calls).toEqual(['liveHosts', 'reclaim live=mm after=60000', 'segments ', 'tunnel ', 'forget ']);
    const r = bed({ leads: true, reclaimed: ['gone'] });
    await livenessTick(r.deps, 2);
    expect(r.calls.slice(2)).toEqual(['segments gone', 'tunnel gone', 'forget gone', 'reload']);
  });

  test('another host does nothing but on its own tick, when it checks as the leader does and reads the host addresses again', async () => {
    const { deps, calls } = bed({ leads: false });
    for (let t = 1; t < FULL_CHECK_EVERY; t++) expect(await livenessTick(deps, t)).toBe(false);
    expect(calls).toEqual([]);
    expect(await livenessTick(deps, FULL_CHECK_EVERY)).toBe(true);
    expect(calls).toEqual(['liveHosts', 'reclaim live=mm after=60000', 'segments ', 'tunnel ', 'forget ', 'reload']);
  });

  test('a failed check is logged, the tick resolves, and the leader checks again at the next tick', async () => {
    const { deps, calls, lines } = bed({ leads: true, fail: true });
    expect(await livenessTick(deps, 1)).toBe(true);
    expect(calls).toEqual(['liveHosts', 'reclaim live=mm after=60000']);
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', message: 'liveness check failed', meta: { error: expect.stringContaining('etcd did not answer') } })]);
    expect(await livenessTick(deps, 2)).toBe(true);
    // The leader tried again at the next tick (and failed again: this bed always fails).
    expect(calls.filter((c) => c === 'liveHosts')).toHaveLength(2);
  });
});
