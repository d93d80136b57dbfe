/**
 * `npm run bench:metrics`: what metrics add to the 1M-line parse path. The loop is the one of
 * `sipwarden test` (needle-prefiltered bulk read, LineClassifier, TestReport), run without and
 * with the Metrics facade's ingest hooks (Prometheus cells + StatsD counts aggregated in
 * process, then sent through hot-shots to a UDP sink on 127.0.0.1).
 *
 * Other jobs on a shared machine move a one-second run by tens of percent, more than the cost
 * measured here. So the log is cut into slices and each round walks them interleaved, slice by
 * slice (100 ms each), alternating which side goes first: load changes hit both sides alike.
 * A full GC runs before each slice, outside the timing. One StatsD flush per round (the daemon
 * flushes once a second; a round is about a second of parsing) is timed and charged to the
 * metrics side. The headline is the median over rounds of
 * the added CPU time (user + system).
 *
 * Options (env): BENCH_LINES (default 1000000), BENCH_RUNS (rounds, default 9), BENCH_SLICES (default 10).
 */
import { createSocket } from "node:dgram";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import StatsDClient from "hot-shots";
import { scanPath } from "../src/cli/bulk-read.js";
import { TestReport } from "../src/cli/test-report.js";
import { Metrics } from "../src/metrics/metrics.js";
import { LineClassifier } from "../src/parsers/index.js";
import type { RawRecord } from "../src/sources/types.js";
import { generateAsteriskLog } from "./gen-asterisk-log.js";
import { BENCH_DIR, fmt, machine, median, writeSection } from "./lib/report.js";

const LINES = Number(process.env.BENCH_LINES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const SLICES = Number(process.env.BENCH_SLICES ?? 10);
const TARGET_PCT = 10;

// A full collection before each timed slice, outside the timing: otherwise a major GC, set off
// by both sides' garbage together, lands in whichever slice happens to run and swamps the result.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Cuts `log` into `n` files of about equal size, on line boundaries. */
function slice(log: string, n: number): string[] {
  const buf = readFileSync(log);
  const files: string[] = [];
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = i === n - 1 ? buf.length : buf.indexOf(10, Math.floor((buf.length * (i + 1)) / n)) + 1;
    const f = `${log}.slice${i}`;
    writeFileSync(f, buf.subarray(start, end));
    files.push(f);
    start = end;
  }
  return files;
}

/** One side of a round: the state `sipwarden test` keeps over its files, plus what it cost. */
class Side {
  readonly classifier = new LineClassifier("auto", []);
  readonly report = new TestReport();
  readonly ctx = { zone: "UTC", now: Date.UTC(2024, 11, 31) };
  // Hooks read only `source` and `received`; the daemon has this object already, so it is not a metrics cost.
  readonly rec: RawRecord = { text: "", source: "file:bench", format: "auto", received: Date.now() };
  cpuMs = 0;
  wallMs = 0;
  delivered = 0;
  events = 0;
  failedAuth = 0;
  constructor(readonly m: Metrics | null) {}

  async run(file: string): Promise<void> {
    const { classifier, report, ctx, rec } = this;
    const onRecord = this.m?.hooks.record;
    const onEvent = this.m?.hooks.event;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await scanPath(file, { needles: classifier.needles, maxLineBytes: 65536 }, (line, lineNo) => {
      this.delivered++;
      if (onRecord) onRecord(rec);
      const ev = classifier.parse(line, ctx);
      if (ev) {
        this.events++;
        if (ev.kind === "auth_failed" || ev.kind === "unknown_account") this.failedAuth++;
        report.add(ev, file, lineNo);
        if (onEvent) onEvent(ev, rec);
      }
    });
    this.charge(c0, t0);
  }

  charge(c0: NodeJS.CpuUsage, t0: bigint): void {
    const c = process.cpuUsage(c0);
    this.cpuMs += (c.user + c.system) / 1000;
    this.wallMs += Number(process.hrtime.bigint() - t0) / 1e6;
  }
}

interface Round {
  base: Side;
  with: Side;
  flushMs: number;
}

async function main(): Promise<void> {
  mkdirSync(BENCH_DIR, { recursive: true });
  const log = join(BENCH_DIR, `asterisk-${LINES}.log`);
  process.stderr.write(`generating ${fmt(LINES)} lines → ${log}\n`);
  const gen = await generateAsteriskLog(log, LINES, 42);
  const files = slice(log, SLICES);

  const sink = createSocket("udp4");
  await new Promise<void>((resolve) => sink.bind(0, "127.0.0.1", () => resolve()));
  // Each flush sends a burst of datagrams (one line per address and service); room for all of them.
  sink.setRecvBufferSize(4 << 20);
  let packets = 0;
  let failedAuthReceived = 0;
  sink.on("message", (msg) => {
    packets++;
    for (const l of msg.toString("utf8").split("\n")) {
      const m = /^security\.failed_auth\.[^.]+\.count:(\d+)\|c$/.exec(l);
      if (m) failedAuthReceived += Number(m[1]);
    }
  });
  // One long-lived facade, as in the daemon; a 10-minute timer so that only the timed flush sends.
  const metrics = new Metrics({
    prometheus: true,
    statsd: { host: "127.0.0.1", port: sink.address().port, prefix: "security" },
    statsdFlushMs: 600_000,
  });
  // Outside the timed part: let the sink read the datagrams of the last flush before the next
  // synchronous slice, or the kernel's receive buffer overflows and the count check fails.
  const settle = () => new Promise((res) => setTimeout(res, 100));

  const round = async (k: number): Promise<Round> => {
    const base = new Side(null);
    const withM = new Side(metrics);
    for (const [i, f] of files.entries()) {
      const order = (i + k) % 2 === 0 ? [base, withM] : [withM, base];
      for (const side of order) {
        gc();
        await side.run(f);
      }
    }
    gc();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await metrics.flush();
    const flushMs = Number(process.hrtime.bigint() - t0) / 1e6;
    withM.charge(c0, t0);
    await settle();
    return { base, with: withM, flushMs };
  };

  await round(0); // warm-up: JIT, page cache
  const rounds: Round[] = [];
  for (let k = 1; k <= RUNS; k++) {
    const r = await round(k);
    rounds.push(r);
    process.stderr.write(
      `  round ${k}: without ${fmt(r.base.cpuMs, 1)} ms CPU (${fmt(r.base.wallMs, 1)} wall), with metrics ${fmt(r.with.cpuMs, 1)} ms CPU (${fmt(r.with.wallMs, 1)} wall)\n`,
    );
  }
  const last = rounds[rounds.length - 1]!;
  const added = (f: (s: Side) => number) => rounds.map((r) => ((f(r.with) - f(r.base)) / f(r.base)) * 100);
  const overhead = median(added((s) => s.cpuMs));
  const overheadWall = median(added((s) => s.wallMs));
  const sum = (f: (r: Round) => number) => rounds.reduce((a, r) => a + f(r), 0);
  const overheadTotal = ((sum((r) => r.with.cpuMs) - sum((r) => r.base.cpuMs)) / sum((r) => r.base.cpuMs)) * 100;
  const cb = median(rounds.map((r) => r.base.cpuMs));
  const cm = median(rounds.map((r) => r.with.cpuMs));
  const mb = median(rounds.map((r) => r.base.wallMs));
  const flushMs = median(rounds.map((r) => r.flushMs));
  const sd = metrics.statsd!.stats;
  const linesPerFlush = sd.sent / sd.flushes;

  // A record hook for every line (the daemon sees each line as a record; here the prefilter skips most).
  const onRecord = metrics.hooks.record!;
  const tr = process.hrtime.bigint();
  for (let i = 0; i < LINES; i++) onRecord(last.with.rec);
  const recordMs = Number(process.hrtime.bigint() - tr) / 1e6;

  const ts = process.hrtime.bigint();
  const text = await metrics.prometheus!.render();
  const scrapeMs = Number(process.hrtime.bigint() - ts) / 1e6;

  // For comparison: hot-shots called directly, once per metric, as a naive hook would (3 per failed auth).
  const direct = new StatsDClient({
    host: "127.0.0.1",
    port: sink.address().port,
    prefix: "direct",
    maxBufferSize: 1432,
    datadog: false,
    includeDataDogTags: false,
    includeDatadogTelemetry: false,
  });
  const DIRECT_CALLS = 100_000;
  const td = process.hrtime.bigint();
  for (let i = 0; i < DIRECT_CALLS; i++) direct.increment(`failed_auth.PJSIP.IPV4/UDP/198_51_100_${i % 250}`);
  const directNs = Number(process.hrtime.bigint() - td) / DIRECT_CALLS;
  await new Promise<void>((res) => direct.close(() => res()));

  await new Promise((res) => setTimeout(res, 200)); // let the last datagrams arrive
  await metrics.close();
  sink.close();
  for (const f of files) rmSync(f, { force: true });
  const expectedFailed = last.with.failedAuth * (RUNS + 1);
  const load = loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");

  const md = [
    "## Metrics",
    "",
    `Command: \`npm run bench:metrics\` (\`bench/metrics.ts\`; ${machine()}). The loop of \`sipwarden test\` over the 1M-line`,
    `Asterisk log of the parse benchmark (seed 42, ${fmt(gen.attackLines)} attack lines from ${fmt(gen.byAddress.size)} addresses), without and`,
    "with the Metrics facade's ingest hooks: Prometheus cells, and StatsD counts aggregated in process, then sent through",
    "hot-shots (buffered datagrams of ≤ 1432 bytes) to a UDP sink on 127.0.0.1.",
    `Other jobs share this machine (load average ${load} at the end), so each of ${RUNS} rounds walks the log in ${SLICES} slices,`,
    "interleaving the two sides slice by slice after a full GC; one StatsD flush per round (as the daemon flushes once a",
    `second) is charged to the metrics side. Headline: the median over rounds of the added CPU time (user + system).`,
    `Target: under ${TARGET_PCT} %.`,
    "",
    "| measure | result |",
    "|---|---:|",
    `| parse loop without metrics (median round) | ${fmt(cb, 1)} ms CPU, ${fmt(mb, 1)} ms wall (${fmt((LINES / mb) * 1000)} lines/s) |`,
    `| parse loop with metrics (median round) | ${fmt(cm, 1)} ms CPU |`,
    `| **added by metrics, CPU time** | **${fmt(overhead, 1)} %** (median of rounds; ${fmt(overheadTotal, 1)} % over all rounds) |`,
    `| added by metrics, wall time | ${fmt(overheadWall, 1)} % (median of rounds) |`,
    `| added per event | ${fmt(((cm - cb) * 1e6) / last.with.events)} ns, the flush included |`,
    `| the StatsD flush of a round (${fmt(linesPerFlush)} lines, one hot-shots call each) | ${fmt(flushMs, 1)} ms wall (median) |`,
    `| hooks per round | ${fmt(last.with.delivered)} record calls (prefiltered lines), ${fmt(last.with.events)} event calls (${fmt(last.with.failedAuth)} failed authentications) |`,
    `| record hook on every line (the daemon's case), ${fmt(LINES)} calls | ${fmt(recordMs, 1)} ms (${fmt((recordMs * 1e6) / LINES, 1)} ns per record) |`,
    `| one /metrics render (${fmt(text.length)} bytes) | ${fmt(scrapeMs, 2)} ms |`,
    `| StatsD datagrams received over all rounds | ${fmt(packets)}; failed_auth counts ${fmt(failedAuthReceived)} of ${fmt(expectedFailed)} |`,
    "",
    `For comparison, calling hot-shots directly (buffered) costs ${fmt(directNs)} ns per call here, ${fmt(3 * directNs)} ns per failed`,
    "authentication for its three counters: more than parsing the line. Hence the hot path only bumps cached cells (IPv4",
    "addresses in a flat typed-array table), and hot-shots sees one call per distinct metric per flush.",
  ].join("\n");
  process.stdout.write(md + "\n");
  if (LINES === 1_000_000) writeSection("metrics", md);
  if (failedAuthReceived !== expectedFailed) {
    process.stderr.write("StatsD lost counts (UDP on loopback should not)\n");
    process.exitCode = 1;
  }
  if (overhead >= TARGET_PCT) process.exitCode = 1;
}

await main();
