// The process logger: JSON lines on stdout (dockerd collects a managed plugin's stdout).
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level: string): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

/** The 12-character form of a Docker ID used in every log line. */
export const short = (id: string): string => id.slice(0, 12);
