/**
 * Structured logs (pino, JSON lines on stdout) for journald and log shippers; a
 * human-readable mode (pino-pretty, in-process, no worker thread) for a terminal.
 */
import { type Logger, pino } from "pino";
import pretty from "pino-pretty";

export type { Logger } from "pino";

export interface LoggerOptions {
  level?: string;
  /** Human-readable output; default: when stdout is a terminal. */
  pretty?: boolean;
  /** Write here instead of stdout (tests). */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "info";
  const human = opts.pretty ?? process.stdout.isTTY === true;
  const base = { name: "sipwarden" };
  if (human) {
    const stream = pretty({
      colorize: process.stdout.isTTY === true,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,name",
      sync: true,
      ...(opts.destination ? { destination: opts.destination } : {}),
    });
    return pino({ level, base }, stream);
  }
  return opts.destination
    ? pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, opts.destination)
    : pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ sync: false }));
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
