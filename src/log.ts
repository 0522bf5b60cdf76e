// The process logger: one readable line per event on a terminal, JSON lines otherwise (dockerd collects a
// managed plugin's stdout, journald a unit's); KNIT_LOG_FORMAT chooses explicitly.
import winston from 'winston';

export type Logger = winston.Logger;
export type LogFormat = 'text' | 'json';

/** `auto` follows where the lines go: a person reads a terminal, a program reads everything else. */
export function chooseFormat(setting: 'auto' | LogFormat, isTty: boolean): LogFormat {
  return setting === 'auto' ? (isTty ? 'text' : 'json') : setting;
}

/** `key=value` as a reader can copy it: bare when it holds no space, quote or equals sign, else JSON-quoted. */
function field(key: string, value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return /^[^\s"=]+$/.test(text ?? '') ? `${key}=${text}` : `${key}=${JSON.stringify(text ?? '')}`;
}

/** One log record as a line: time, level, message, then its fields (pure; unit-tested). */
export function textLine(info: Record<string, unknown>): string {
  const { timestamp, level, message, ...fields } = info;
  const parts = [String(timestamp ?? ''), String(level).padEnd(5), String(message)];
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) parts.push(field(k, v));
  return parts.filter((p) => p !== '').join(' ');
}

export function createLogger(level: string, format: LogFormat = 'json'): Logger {
  const render = format === 'json' ? winston.format.json() : winston.format.printf((info) => textLine(info));
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), render),
    transports: [new winston.transports.Console()],
  });
}

/** The 12-character form of a Docker ID used in every log line. */
export const short = (id: string): string => id.slice(0, 12);
