#!/usr/bin/env node
// Entry point: `knit` runs the daemon; `knit doctor` / `knit status` ask a running one.
import { request } from 'node:http';
import { parseConfig } from './config.js';
import { startDaemon } from './daemon.js';
import { describe } from './errors.js';
import { createLogger } from './log.js';

/** `knit doctor` and `knit status`: one call to the running daemon, its answer printed. */
async function ask(socket: string, path: string): Promise<number> {
  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'POST' }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve(data));
    });
    req.on('error', reject);
    req.end('{}');
  });
  process.stdout.write(JSON.stringify(JSON.parse(body), null, 2) + '\n');
  return 0;
}

async function main(): Promise<number> {
  const config = parseConfig(process.env);
  const command = process.argv[2] ?? 'daemon';
  if (command === 'doctor') return ask(config.socket, '/knit.Doctor');
  if (command === 'status') return ask(config.socket, '/knit.Status');
  if (command !== 'daemon') {
    process.stderr.write(`usage: knit [daemon|doctor|status]\n`);
    return 2;
  }
  const log = createLogger(config.logLevel);
  // A bug in one request must not take down every container's network plugin.
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: describe(err) }));
  const daemon = await startDaemon(config, log);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('knit stopping');
  await daemon.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`knit: ${describe(err)}\n`);
    process.exit(1);
  },
);
