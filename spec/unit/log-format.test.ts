// Log lines: readable text on a terminal, JSON elsewhere, KNIT_LOG_FORMAT to choose.
import { Writable } from 'node:stream';
import winston from 'winston';
import { parseConfig } from '../../src/config.js';
import { chooseFormat, createLogger, textLine } from '../../src/log.js';

test('auto follows the terminal; text and json are taken as set', () => {
  expect(chooseFormat('auto', true)).toBe('text');
  expect(chooseFormat('auto', false)).toBe('json');
  expect(chooseFormat('json', true)).toBe('json');
  expect(chooseFormat('text', false)).toBe('text');
});

test('KNIT_LOG_FORMAT: auto by default, text or json, anything else refused by name', () => {
  expect(parseConfig({}).logFormat).toBe('auto');
  expect(parseConfig({ KNIT_LOG_FORMAT: 'text' }).logFormat).toBe('text');
  expect(parseConfig({ KNIT_LOG_FORMAT: 'json' }).logFormat).toBe('json');
  expect(() => parseConfig({ KNIT_LOG_FORMAT: 'pretty' })).toThrow('KNIT_LOG_FORMAT "pretty" is not one of auto, text, json');
});

test('a text line: time, level, message, then key=value, quoted only where needed', () => {
  expect(textLine({ timestamp: '2026-12-02T21:00:00.000Z', level: 'info', message: 'knit ready', socket: '/run/docker/plugins/knit.sock', store: 'local' }))
    .toBe('2026-12-02T21:00:00.000Z info  knit ready socket=/run/docker/plugins/knit.sock store=local');
  expect(textLine({ timestamp: 't', level: 'warn', message: 'sweep failed', error: 'ip: "kn-1" not found', n: 3, ports: [80], gone: undefined }))
    .toBe('t warn  sweep failed error="ip: \\"kn-1\\" not found" n=3 ports=[80]');
});

/** What the logger writes, captured from a stream in place of the console. */
function capture(format: 'text' | 'json'): { log: winston.Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger('info', format);
  log.clear();
  log.add(new winston.transports.Stream({ stream: new Writable({ write(chunk, _enc, done) { lines.push(String(chunk).trimEnd()); done(); } }) }));
  return { log, lines };
}

test('the logger writes one JSON object per line in json, one readable line in text', async () => {
  const json = capture('json');
  json.log.info('knit ready', { host: 'abc' });
  const text = capture('text');
  text.log.info('knit ready', { host: 'abc' });
  text.log.debug('not at info level');
  await new Promise((r) => setImmediate(r));
  expect(JSON.parse(json.lines[0])).toMatchObject({ level: 'info', message: 'knit ready', host: 'abc', timestamp: expect.any(String) });
  expect(text.lines).toHaveLength(1);
  expect(text.lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z info  knit ready host=abc$/);
});
