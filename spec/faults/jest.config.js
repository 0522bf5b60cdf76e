// Jest for the fault suite (make test-faults): the same ts-jest ESM setup as the top jest.config.js, one project.
import { fileURLToPath } from 'node:url';

const rootDir = fileURLToPath(new URL('../..', import.meta.url));
const esm = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }] },
  testEnvironment: 'node',
};
// Every loop and wait inside is bounded; this only catches a suite that hangs outright.
const testTimeout = 600_000;

export default {
  rootDir,
  projects: [{
    ...esm,
    rootDir,
    displayName: 'faults',
    // Only spec/ is crawled: .testbed/ and plugin/build/ hold other runs' root file systems, which change under jest.
    roots: ['<rootDir>/spec'],
    modulePathIgnorePatterns: ['<rootDir>/.testbed/', '<rootDir>/plugin/'],
    testMatch: ['<rootDir>/spec/faults/**/*.test.ts'],
    testTimeout,
  }],
  testTimeout,
};
