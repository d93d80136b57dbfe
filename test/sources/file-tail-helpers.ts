/** Shared helpers for the file-tail tests: temp dirs, a record collector, condition waits. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../src/core/supervisor.js";
import { FileTail, type FileTailOptions } from "../../src/sources/file-tail.js";
import type { RawRecord } from "../../src/sources/types.js";

export function tempDir(prefix = "sipwarden-tail-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Poll `cond` until it holds; fails with `what` after `timeoutMs`. No fixed sleeps in tests. */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface LogEntry {
  level: string;
  obj: object;
  msg: string | undefined;
}

export class CaptureLogger implements Logger {
  readonly entries: LogEntry[] = [];
  debug(obj: object, msg?: string): void {
    this.entries.push({ level: "debug", obj, msg });
  }
  info(obj: object, msg?: string): void {
    this.entries.push({ level: "info", obj, msg });
  }
  warn(obj: object, msg?: string): void {
    this.entries.push({ level: "warn", obj, msg });
  }
  error(obj: object, msg?: string): void {
    this.entries.push({ level: "error", obj, msg });
  }
  messages(level: string): string[] {
    return this.entries.filter((e) => e.level === level).map((e) => e.msg ?? "");
  }
}

/** A running tail whose records are collected in memory. */
export class RunningTail {
  readonly records: RawRecord[] = [];
  readonly tail: FileTail;
  readonly logger: CaptureLogger;
  readonly #controller = new AbortController();
  readonly done: Promise<void>;

  constructor(opts: Omit<FileTailOptions, "logger">, onRecord?: (r: RawRecord) => void) {
    this.logger = new CaptureLogger();
    this.tail = new FileTail({ pollMs: 50, ...opts, logger: this.logger });
    this.done = this.tail.run((r) => {
      this.records.push(r);
      onRecord?.(r);
    }, this.#controller.signal);
  }

  texts(): string[] {
    return this.records.map((r) => r.text);
  }

  async waitCount(n: number, timeoutMs = 15_000): Promise<void> {
    await waitUntil(() => this.records.length >= n, `${n} records (have ${this.records.length})`, timeoutMs);
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    await this.done;
  }
}

/** Lines `prefix0 .. prefix{n-1}` joined with newlines, with a trailing newline. */
export function numbered(prefix: string, from: number, n: number): string {
  let s = "";
  for (let i = from; i < from + n; i++) s += `${prefix}${i}\n`;
  return s;
}

/** Assert-helper: the ids that occur more than once, and the expected ids that never occur. */
export function diffExactlyOnce(
  seen: readonly string[],
  expected: readonly string[],
): { dup: string[]; missing: string[]; extra: string[] } {
  const count = new Map<string, number>();
  for (const s of seen) count.set(s, (count.get(s) ?? 0) + 1);
  const exp = new Set(expected);
  return {
    dup: [...count].filter(([, c]) => c > 1).map(([s]) => s),
    missing: expected.filter((e) => !count.has(e)),
    extra: [...count.keys()].filter((s) => !exp.has(s)),
  };
}
