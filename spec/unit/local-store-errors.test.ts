// The embedded store fails with knit's error kinds, as the cluster stores do, so callers can tell what to do.
import { KnitError } from '../../src/errors.js';
import { type Bed, openBed } from './ipam-bed.js';

let bed: Bed;
beforeEach(async () => (bed = await openBed()));
afterEach(() => bed.close());

test('malformed commits are refused as internal errors that say what was wrong, and write nothing', async () => {
  const { store } = bed;
  const cases: Array<[() => Promise<unknown>, RegExp]> = [
    [() => store.commit([{ key: '', value: 'v' }]), /a store key must be a non-empty string/],
    [() => store.commit([{ key: 'k', value: '1' }, { key: 'k', value: '2' }]), /may write a key only once, and k appears twice/],
    [() => store.commit([{ key: 'k', value: 'v', expect: -1 }]), /expected revision for k must be a whole number >= 0/],
    [() => store.get('x'.repeat(1001)), /1001 bytes long; keys are limited to 1000/],
    [() => store.grantLease(0), /a lease needs a positive TTL/],
  ];
  for (const [call, message] of cases) {
    const err = await call().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KnitError);
    expect(err).toMatchObject({ kind: 'internal', message: expect.stringMatching(message) });
  }
  expect(await store.list('')).toEqual([]);
});

test('a closed store says so with an internal error', async () => {
  await bed.store.commit([{ key: 'k', value: 'v' }]);
  await bed.store.close();
  const err = await bed.store.get('k').then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KnitError);
  expect(err).toMatchObject({ kind: 'internal', message: 'the local store is closed' });
});
