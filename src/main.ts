#!/usr/bin/env node
// Entry point: `knit` (or `knit daemon`) runs the plugin; `knit status` and `knit doctor` ask a running one.
import { parseArgs, USAGE, type Command } from './cli/args.js';
import { ask, CliError } from './cli/client.js';
import { formatDoctor, formatStatus, type DoctorDocument } from './cli/format.js';
import { parseConfig, type Config } from './config.js';
import { startDaemon } from './daemon.js';
import { describe } from './errors.js';
import { chooseFormat, createLogger } from './log.js';
import type { StatusDocument } from './status.js';

async function query(command: Extract<Command, { kind: 'ask' }>, config: Config): Promise<number> {
  const socket = command.socket ?? config.socket;
  const path = { status: '/knit.Status', doctor: '/knit.Doctor', 'rotate-key': '/knit.RotateKey' }[command.what];
  const doc = await ask(socket, path);
  if (command.json) {
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  }
  if (command.what === 'status') {
    process.stdout.write(formatStatus(doc as StatusDocument));
    return 0;
  }
  if (command.what === 'rotate-key') {
    process.stdout.write(`WireGuard key rotated; new public key ${(doc as { publicKey: string }).publicKey}\n`);
    return 0;
  }
  const report = doc as DoctorDocument;
  process.stdout.write(formatDoctor(report));
  return report.failures.length ? 1 : 0;
}

async function daemon(config: Config): Promise<number> {
  const log = createLogger(config.logLevel, chooseFormat(config.logFormat, process.stdout.isTTY === true));
  // A bug in one request must not take down every container's network plugin.
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: describe(err) }));
  const running = await startDaemon(config, log);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('knit stopping');
  await running.stop();
  return 0;
}

async function main(): Promise<number> {
  const command = parseArgs(process.argv.slice(2));
  if (command.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command.kind === 'usage') {
    process.stderr.write(`knit: ${command.problem}\n\n${USAGE}`);
    return 2;
  }
  const config = parseConfig(process.env);
  return command.kind === 'daemon' ? daemon(config) : query(command, config);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(err instanceof CliError ? `${err.message}\n` : `knit: ${describe(err)}\n`);
    process.exit(1);
  },
);
