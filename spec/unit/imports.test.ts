// src/ imports: no cycle, and the metrics module sits right below the entry point (only the entry point's files import it).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../../src/', import.meta.url));

/** Each file's relative imports (type-only ones too: a layer rule is about what a file knows of). */
function importGraph(root: string): Map<string, string[]> {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) files.push(path);
    }
  };
  walk(root);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    // Dynamic imports too (modules loaded only when a setting asks for them are still in the graph).
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|\bimport\(\s*'(\.[^']+)'\s*\)/gms)].map((m) => m[1] ?? m[2]);
    graph.set(relative(root, file), targets.map((t) => relative(root, resolve(dirname(file), t.replace(/\.js$/, '.ts')))));
  }
  return graph;
}

/** Every cycle found by a depth-first walk, as "a -> b -> a". */
function cycles(graph: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[] = [];
  const visit = (file: string, stack: string[]): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
      else if (!state.has(next)) visit(next, stack);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file, []);
  return found;
}

const graph = importGraph(src);

test('the graph is read: every layer is there and imports are resolved to files of src/', () => {
  expect(graph.size).toBeGreaterThan(100);
  const edges = [...graph.values()].flat();
  expect(edges.length).toBeGreaterThan(300);
  expect(edges.filter((to) => !graph.has(to))).toEqual([]);
  expect(graph.get('daemon.ts')).toEqual(expect.arrayContaining(['metrics/kit.ts', 'store/local.ts', 'datapath/kernel.ts']));
  // A dynamic import is an edge too.
  expect(graph.get('store/open.ts')).toEqual(expect.arrayContaining(['store/etcd.ts', 'store/consul.ts']));
});

test('no import cycle in src/', () => {
  expect(cycles(graph)).toEqual([]);
});

test('the cycle finder finds one (positive control)', () => {
  expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]))).toEqual(['a.ts -> b.ts -> c.ts -> a.ts']);
});

test('only the entry point (config.ts, daemon.ts, status.ts) imports src/metrics/, and metrics/ imports nothing of the entry point: lower layers get observers handed down', () => {
  const importers = [...graph].filter(([from, to]) => !from.startsWith('metrics/') && to.some((t) => t.startsWith('metrics/'))).map(([from]) => from);
  expect(importers.sort()).toEqual(['config.ts', 'daemon.ts', 'status.ts']);
  const below = ['datapath/', 'store/', 'network/', 'ipam/', 'protocol/', 'dns/', 'names/', 'addr/', 'util/'];
  const metricsImports = [...graph].filter(([from]) => from.startsWith('metrics/')).flatMap(([, to]) => to);
  const entry = ['main.ts', 'daemon.ts', 'config.ts', 'status.ts', 'maintenance.ts'];
  expect(metricsImports.filter((t) => entry.includes(t) || t.startsWith('cli/'))).toEqual([]);
  // Control: metrics/ does import the layers below it (types and the unix-socket listener).
  expect(metricsImports.some((t) => below.some((b) => t.startsWith(b)))).toBe(true);
});
