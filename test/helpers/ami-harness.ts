/**
 * Shared set-up for the AMI source tests: a fake Asterisk on an ephemeral 127.0.0.1 port, an
 * AmiSource pointed at it with short time-outs, a capturing logger, and cleanup after each test.
 */
import assert from "node:assert/strict";
import { afterEach } from "node:test";
import type { AmiSourceConfig } from "../../src/config/schema.js";
import type { SecurityEvent } from "../../src/core/events.js";
import { amiParser } from "../../src/parsers/ami.js";
import { type AmiLogger, AmiSource, type AmiSourceOptions } from "../../src/sources/ami.js";
import type { RawRecord } from "../../src/sources/types.js";
import { FakeAmiServer, type FakeAmiServerOptions, sampleSecurityEvents } from "./ami-server.js";

export const CTX = { zone: "UTC", now: 0 };

export interface Harness {
  server: FakeAmiServer;
  source: AmiSource;
  records: RawRecord[];
  logs: { level: string; msg: string; obj: Record<string, unknown> }[];
  done: Promise<void>;
  /** Stops the source only (the server stays up). */
  abort(): void;
  stop(): Promise<void>;
}

/** Run after each test, last registered first. */
export const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

export function capture(): { logger: AmiLogger; logs: Harness["logs"] } {
  const logs: Harness["logs"] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => logs.push({ level, msg, obj });
  return { logger: { info: at("info"), warn: at("warn"), error: at("error") }, logs };
}

export function config(port: number, over: Partial<AmiSourceConfig> = {}): AmiSourceConfig {
  return {
    host: "127.0.0.1",
    port,
    username: "ips",
    secret: "s3cret",
    auth: "md5",
    pingInterval: 20_000,
    silenceWarning: 600_000,
    ...over,
  };
}

export const FAST: AmiSourceOptions = {
  connectTimeout: 2000,
  bannerTimeout: 2000,
  responseTimeout: 5000,
  backoff: { initial: 20, max: 200, jitter: 0 },
  authBackoff: { initial: 60_000, max: 60_000, jitter: 0 },
};

export async function start(
  serverOpts: FakeAmiServerOptions = {},
  cfg: Partial<AmiSourceConfig> = {},
  opts: AmiSourceOptions = {},
): Promise<Harness> {
  const server = await FakeAmiServer.start({ authFailDelayMs: 50, reportLogins: false, ...serverOpts });
  const { logger, logs } = capture();
  const source = new AmiSource(config(server.port, cfg), { ...FAST, logger, ...opts });
  const records: RawRecord[] = [];
  const ac = new AbortController();
  const done = source.run((r) => records.push(r), ac.signal);
  // Keep a rejection observed until a test awaits it.
  done.catch(() => {});
  const stop = async (): Promise<void> => {
    ac.abort();
    await done.catch(() => {});
    await server.close();
  };
  cleanups.push(stop);
  return { server, source, records, logs, done, abort: () => ac.abort(), stop };
}

export function parsed(records: readonly RawRecord[]): SecurityEvent[] {
  return records.map((r) => {
    const ev = amiParser.parse(r.text, CTX);
    assert.ok(ev, `record did not parse: ${r.text}`);
    return ev;
  });
}

/** The records, minus the SuccessfulAuth that Asterisk reports for our own login (when enabled). */
export function attackRecords(h: Harness): RawRecord[] {
  return h.server.opts.reportLogins ? h.records.slice(1) : h.records;
}

export const SAMPLE = sampleSecurityEvents();
/** What the source should emit for one framed event: LF-joined lines, no terminator. */
export const asRecord = (framed: string): string => framed.replace(/\r\n\r\n$/, "").replaceAll("\r\n", "\n");
export const SAMPLE_STREAM = SAMPLE.join("");
