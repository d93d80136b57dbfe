/**
 * `npm run bench:store`: throughput of the SQLite state store on the real disk (WAL,
 * synchronous=NORMAL): single-transaction addBan (the ban path), re-bans, batched addBan, the
 * events ring, and what a restart costs (open with quick_check + activeBans).
 *
 * Options (env): BENCH_BANS (default 50000), BENCH_RUNS (default 3).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { EventRecord } from "../src/core/events.js";
import { openSqliteStore } from "../src/store/sqlite.js";
import { fmt, machine, ROOT, writeSection } from "./lib/report.js";

const BANS = Number(process.env.BENCH_BANS ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SINCE = Date.UTC(2024, 4, 1);

const target = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const ban = (i: number, since = SINCE) => ({
  target: target(i),
  rule: "sip-auth-bruteforce",
  reason: "5 failed auths in 1m",
  source: "rule" as const,
  since,
  expiresAt: since + 3_600_000,
  count: 5,
});

function event(i: number): EventRecord {
  return {
    time: new Date(SINCE + i).toISOString(),
    server: "asterisk",
    ip: target(i % 5000),
    port: 5060,
    transport: "udp",
    kind: "auth_failed",
    service: "PJSIP",
    account: String(1000 + (i % 100)),
    userAgent: "friendly-scanner",
    pattern: "asterisk.pjsip.request_failed",
    line: `[2024-05-01 12:00:00] NOTICE[1234] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:${i}@203.0.113.5>' failed for '${target(i % 5000)}:5060' (callid: ${i}) - Failed to authenticate`,
  };
}

function perSecond(n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function best(xs: number[]): number {
  return Math.max(...xs);
}

interface Figures {
  single: number;
  extend: number;
  batched: number;
  events: number;
  openMs: number;
  activeMs: number;
}

function once(): Figures {
  const dir = mkdtempSync(join(ROOT, ".bench-store-"));
  try {
    let store = openSqliteStore(join(dir, "state"));
    const single = perSecond(BANS, () => {
      for (let i = 0; i < BANS; i++) store.addBan(ban(i));
    });
    const extend = perSecond(BANS, () => {
      for (let i = 0; i < BANS; i++) store.addBan(ban(i, SINCE + 60_000));
    });
    const batched = perSecond(BANS, () => {
      for (let i = 0; i < BANS; i += 100) {
        store.commitBatch(() => {
          for (let k = i; k < i + 100; k++) store.addBan(ban(BANS + k));
        });
      }
    });
    const EVENTS = 200_000;
    const events = perSecond(EVENTS, () => {
      for (let i = 0; i < EVENTS; i += 100) store.addEvents(Array.from({ length: 100 }, (_, k) => event(i + k)));
    });
    store.close();

    const t0 = process.hrtime.bigint();
    store = openSqliteStore(join(dir, "state"));
    const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const t1 = process.hrtime.bigint();
    const active = store.activeBans(SINCE);
    const activeMs = Number(process.hrtime.bigint() - t1) / 1e6;
    if (active.length !== 2 * BANS) throw new Error(`expected ${2 * BANS} active bans, got ${active.length}`);
    store.close();
    return { single, extend, batched, events, openMs, activeMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs: Figures[] = [];
for (let r = 0; r < RUNS; r++) runs.push(once());
const f = {
  single: best(runs.map((r) => r.single)),
  extend: best(runs.map((r) => r.extend)),
  batched: best(runs.map((r) => r.batched)),
  events: best(runs.map((r) => r.events)),
  openMs: Math.min(...runs.map((r) => r.openMs)),
  activeMs: Math.min(...runs.map((r) => r.activeMs)),
};

const md = `## State store (SQLite, \`bench/store.ts\`)

${machine()}; ext4 disk, WAL, synchronous=NORMAL; best of ${RUNS} runs, ${fmt(BANS)} distinct targets.

| operation | rate |
|---|---|
| \`addBan\`, one transaction each (the ban path) | ${fmt(f.single)} /s |
| \`addBan\` re-ban (extend an existing ban) | ${fmt(f.extend)} /s |
| \`addBan\` inside \`commitBatch\` of 100 | ${fmt(f.batched)} /s |
| \`addEvents\` in batches of 100, ring of 10,000 | ${fmt(f.events)} events/s |
| open with \`quick_check\`, ${fmt(2 * BANS)} bans + ring | ${fmt(f.openMs, 1)} ms |
| \`activeBans\` over ${fmt(2 * BANS)} bans | ${fmt(f.activeMs, 1)} ms |
`;
writeSection("store", md);
process.stdout.write(md);
