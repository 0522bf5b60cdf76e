// Jest runs the TypeScript sources as ES modules (execa 9 is ESM-only); type checking is `npm run typecheck`.
const esm = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }] },
  testEnvironment: 'node',
  // The managed plugin's build output holds a whole rootfs: nothing there is a test or a module of ours.
  modulePathIgnorePatterns: ['<rootDir>/plugin/build/', '<rootDir>/.testbed/'],
};
const project = (name, dir, extra = {}) => ({ ...esm, displayName: name, testMatch: [`<rootDir>/spec/${dir}/**/*.test.ts`], ...extra });

export default {
  projects: [
    project('unit', 'unit'),
    project('store', 'store'),
    project('kernel', 'kernel'),
    project('e2e', 'e2e'),
  ],
  // A per-test bound for the slowest suite (e2e drives real engines); every wait inside is bounded too.
  testTimeout: 300_000,
};
