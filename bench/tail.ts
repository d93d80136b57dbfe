/**
 * `node --import tsx bench/tail.ts`: the file source's speed.
 *
 * - catch-up: a file of BENCH_TAIL_LINES Asterisk-like lines read from its start (fromStart),
 *   every line emitted with its position; lines/s and MB/s, best of BENCH_RUNS;
 * - live latency: one line appended every 5 ms, time from the write to the emit, with inotify
 *   and with polling only (500 ms, the default safety net);
 * - rotation: lines/s while the file is renamed and recreated every 20,000 lines.
 *
 * Options (env): BENCH_TAIL_LINES (default 1000000), BENCH_RUNS (default 3).
 */
import { closeSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileTail } from "../src/sources/file-tail.js";
import { fmt, machine, writeSection } from "./lib/report.js";

const LINES = Number(process.env.BENCH_TAIL_LINES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function line(i: number): string {
  return (
    `[2024-05-14 10:21:${String(i % 60).padStart(2, "0")}] NOTICE[${2100 + (i % 50)}] res_pjsip/pjsip_distributor.c: ` +
    `Request 'REGISTER' from '<sip:${1000 + (i % 900)}@203.0.113.5>' failed for '198.51.100.${i % 250}:5060' ` +
    `(callid: ${i.toString(36)}) - No matching endpoint found\n`
  );
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("benchmark timed out");
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function catchUp(dir: string): Promise<{ linesPerSec: number; mbPerSec: number; bytes: number }> {
  const p = join(dir, "full");
  const fd = openSync(p, "w");
  let bytes = 0;
  let buf = "";
  for (let i = 0; i < LINES; i++) {
    buf += line(i);
    if (buf.length > 1 << 20) {
      bytes += writeSync(fd, buf);
      buf = "";
    }
  }
  bytes += writeSync(fd, buf);
  closeSync(fd);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < RUNS; r++) {
    let n = 0;
    const c = new AbortController();
    const t0 = process.hrtime.bigint();
    const done = new FileTail({ paths: [p], fromStart: true, watch: false }).run(() => {
      n++;
    }, c.signal);
    await until(() => n >= LINES, 300_000);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    c.abort();
    await done;
  }
  return { linesPerSec: LINES / best, mbPerSec: bytes / 2 ** 20 / best, bytes };
}

async function latency(dir: string, watch: boolean, samples: number): Promise<{ p50: number; p99: number }> {
  const p = join(dir, watch ? "lat-inotify" : "lat-poll");
  writeFileSync(p, "");
  const sent = new Map<string, bigint>();
  const lat: number[] = [];
  const c = new AbortController();
  const done = new FileTail({ paths: [p], watch, pollMs: 500 }).run((r) => {
    const t = sent.get(r.text);
    if (t !== undefined) lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }, c.signal);
  await new Promise((r) => setTimeout(r, 200));
  const fd = openSync(p, "a");
  for (let i = 0; i < samples; i++) {
    const text = `sample ${i}`;
    sent.set(text, process.hrtime.bigint());
    writeSync(fd, `${text}\n`);
    await new Promise((r) => setTimeout(r, watch ? 5 : 37));
  }
  closeSync(fd);
  await until(() => lat.length >= samples, 10_000);
  c.abort();
  await done;
  lat.sort((a, b) => a - b);
  return { p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

async function rotation(dir: string): Promise<{ linesPerSec: number; rotations: number }> {
  const p = join(dir, "rot");
  writeFileSync(p, "");
  const total = 200_000;
  let n = 0;
  const c = new AbortController();
  const done = new FileTail({ paths: [p], fromStart: true, pollMs: 100 }).run(() => {
    n++;
  }, c.signal);
  await new Promise((r) => setTimeout(r, 100));
  let fd = openSync(p, "a");
  let rotations = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < total; i += 1000) {
    let s = "";
    for (let k = i; k < i + 1000; k++) s += line(k);
    writeSync(fd, s);
    if ((i + 1000) % 20_000 === 0) {
      renameSync(p, `${p}.${++rotations}`);
      closeSync(fd);
      fd = openSync(p, "a");
    }
    await new Promise((r) => setImmediate(r));
  }
  closeSync(fd);
  await until(() => n >= total, 60_000);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  c.abort();
  await done;
  if (n !== total) throw new Error(`rotation run saw ${n} of ${total} lines`);
  return { linesPerSec: total / secs, rotations };
}

const dir = mkdtempSync(join(tmpdir(), "sipwarden-bench-tail-"));
try {
  const cu = await catchUp(dir);
  const li = await latency(dir, true, 400);
  const lp = await latency(dir, false, 60);
  const ro = await rotation(dir);
  const md = `## File tail (\`bench/tail.ts\`)

${machine()}. ${fmt(LINES)} Asterisk-like lines (${fmt(cu.bytes / 2 ** 20, 1)} MiB), 64 KiB reads, every line emitted
with its position; best of ${RUNS}.

| measure | result |
| --- | --- |
| catch-up read (fromStart) | ${fmt(cu.linesPerSec)} lines/s, ${fmt(cu.mbPerSec, 1)} MiB/s |
| live latency, write → emit, inotify | p50 ${fmt(li.p50, 2)} ms, p99 ${fmt(li.p99, 2)} ms |
| live latency, polling only (500 ms) | p50 ${fmt(lp.p50, 0)} ms, p99 ${fmt(lp.p99, 0)} ms |
| 200,000 lines written in 1,000-line bursts, renamed every 20,000 (${ro.rotations} rotations) | ${fmt(ro.linesPerSec)} lines/s end to end, none lost |
`;
  writeSection("tail", md);
  process.stdout.write(md);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
