/**
 * `npm run bench:ami`: AMI security events per second through the real TCP client, the frame
 * parser, amiParser and the detection engine, against the fake Asterisk in a child process
 * (so the sender does not share a CPU thread with the client). The fake server keeps
 * Asterisk's 100 ms `writetimeout`: a client that stalls that long is dropped, and the run
 * reports it.
 *
 * Runs:
 * - flood: BENCH_AMI_EVENTS events as fast as the server can send them, three times each for
 *   framing + parse and for framing + parse + detect; the best run counts;
 * - paced: 100,000 events/s for BENCH_AMI_SECONDS seconds, with the client's CPU use and its
 *   longest event-loop stall;
 * - in-process: the frame parser and amiParser alone on a buffer (no sockets).
 *
 * Options (env): BENCH_AMI_EVENTS (default 500000), BENCH_AMI_SECONDS (default 3), BENCH_RUNS (default 3).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { SecurityEvent } from "../src/core/events.js";
import { DetectionEngine } from "../src/detect/engine.js";
import { loadRules } from "../src/detect/rules.js";
import { amiParser } from "../src/parsers/ami.js";
import { AmiSource } from "../src/sources/ami.js";
import { AmiFramer } from "../src/sources/ami-framing.js";
import { FakeAmiServer, sampleSecurityEvents } from "../test/helpers/ami-server.js";
import { fmt, machine, writeSection } from "./lib/report.js";

const EVENTS = Number(process.env.BENCH_AMI_EVENTS ?? 500_000);
const SECONDS = Number(process.env.BENCH_AMI_SECONDS ?? 3);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CTX = { zone: "UTC", now: Date.UTC(2024, 4, 14) };

/** 1,000 distinct events: the sample's types, with the attacker address and session varied. */
function pool(): string[] {
  const base = sampleSecurityEvents();
  const out: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const e = base[i % base.length]!;
    out.push(
      e
        .replace(/RemoteAddress: (IPV4\/\w+\/)[\d.]+\//, `RemoteAddress: $1198.51.${100 + (i % 4)}.${i % 250}/`)
        .replace(/SessionID: ([^\r]*)/, `SessionID: $1-${i}`),
    );
  }
  return out;
}

// ---------------------------------------------------------------- child: the fake Asterisk
async function serve(): Promise<void> {
  const events = pool();
  // The parent writes one JSON line `{count, rate}` per run before it connects.
  const requests: { count: number; rate?: number }[] = [];
  const server = await FakeAmiServer.start({
    reportLogins: false,
    writeTimeoutMs: 100,
    onLogin: async (s) => {
      // A session nobody asked for (a reconnect after a drop) gets no traffic.
      const req = requests.shift();
      if (!req) return;
      const before = server.writeTimeouts;
      await s.blast(events, req.count, req.rate ? { rate: req.rate } : {});
      const dropped = server.writeTimeouts - before;
      process.stdout.write(`${JSON.stringify({ done: s.id, dropped })}\n`);
    },
  });
  createInterface({ input: process.stdin })
    .on("line", (l) => requests.push(JSON.parse(l) as { count: number; rate?: number }))
    .on("close", () => void server.close().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
}

// ---------------------------------------------------------------- parent: the client
interface Child {
  proc: ChildProcess;
  port: number;
  next(): Promise<Record<string, number>>;
}

async function startChild(): Promise<Child> {
  const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: proc.stdout! });
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  lines.on("line", (l) => {
    queue.push(l);
    wake?.();
  });
  const next = async (): Promise<Record<string, number>> => {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    wake = null;
    return JSON.parse(queue.shift()!) as Record<string, number>;
  };
  const { port } = await next();
  return { proc, port: port!, next };
}

interface RunResult {
  /** Events received (fewer than asked when the server dropped us). */
  events: number;
  perSecond: number;
  /** Events per second of the client's own CPU time: what the code costs, whatever the machine's load. */
  perCpuSecond: number;
  cpuPercent: number;
  maxStallMs: number;
  /** Sessions the server dropped for a write stall (Asterisk's writetimeout). */
  dropped: number;
  decisions: number;
}

/** One connection: tells the child what to send, counts records until all arrived, times first to last. */
async function run(child: Child, count: number, rate: number | undefined, detect: boolean): Promise<RunResult> {
  const engine = detect ? new DetectionEngine(loadRules(), { seed: 1 }) : null;
  let n = 0;
  let decisions = 0;
  let t0 = 0;
  let t1 = 0;
  let cpu0 = process.cpuUsage();
  let cpu = cpu0;
  const stall = monitorEventLoopDelay({ resolution: 5 });
  const source = new AmiSource(
    {
      host: "127.0.0.1",
      port: child.port,
      username: "ips",
      secret: "s3cret",
      auth: "plain",
      pingInterval: 60_000,
      silenceWarning: 0,
    },
    // No reconnect within a run: a dropped session ends it and is reported.
    { backoff: { initial: 600_000, max: 600_000 } },
  );
  const ac = new AbortController();
  const emit = (r: { text: string }): void => {
    if (n === 0) {
      t0 = performance.now();
      cpu0 = process.cpuUsage();
      stall.enable();
    }
    const ev: SecurityEvent | null = amiParser.parse(r.text, CTX);
    if (ev && engine) decisions += engine.observe(ev).length;
    n++;
    t1 = performance.now();
    cpu = process.cpuUsage(cpu0);
  };
  child.proc.stdin!.write(`${JSON.stringify({ count, rate })}\n`);
  const done = source.run(emit, ac.signal);
  const server = await child.next();
  // The server has written everything (or dropped us); wait for the rest to be read.
  let last = -1;
  while (n < count && n !== last) {
    last = n;
    await new Promise((r) => setTimeout(r, 500));
  }
  stall.disable();
  ac.abort();
  await done;
  const ms = t1 - t0;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    events: n,
    perSecond: n / (ms / 1000),
    perCpuSecond: n / (cpuMs / 1000),
    cpuPercent: (cpuMs / ms) * 100,
    maxStallMs: stall.max / 1e6,
    dropped: server.dropped ?? 0,
    decisions,
  };
}

/** Framing and parsing alone, on a buffer, best of 3, in CPU time (no sockets). */
function inProcess(): { framePerCpuSecond: number; parsePerCpuSecond: number; mbPerCpuSecond: number } {
  const events = pool();
  const buf = Buffer.from(events.join("").repeat(200), "latin1");
  const count = events.length * 200;
  const cpuMs = (fn: () => void): number => {
    const c = process.cpuUsage();
    fn();
    const d = process.cpuUsage(c);
    return (d.user + d.system) / 1000;
  };
  let frameMs = Number.POSITIVE_INFINITY;
  let parseMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) {
    const texts: string[] = [];
    const framer = new AmiFramer({ onMessage: (m) => texts.push(m.text) });
    frameMs = Math.min(
      frameMs,
      cpuMs(() => {
        for (let i = 0; i < buf.length; i += 65_536) framer.push(buf.subarray(i, i + 65_536));
      }),
    );
    let ok = 0;
    parseMs = Math.min(
      parseMs,
      cpuMs(() => {
        for (const x of texts) if (amiParser.parse(x, CTX)) ok++;
      }),
    );
    if (ok !== count) throw new Error(`parsed ${ok} of ${count}`);
  }
  return {
    framePerCpuSecond: count / (frameMs / 1000),
    parsePerCpuSecond: count / (parseMs / 1000),
    mbPerCpuSecond: buf.length / 2 ** 20 / (frameMs / 1000),
  };
}

async function main(): Promise<void> {
  const child = await startChild();
  try {
    // Warm-up, not reported: lets V8 compile the framing, parsing and detection paths.
    inProcess();
    await run(child, 50_000, undefined, true);
    const best = (rs: RunResult[]) => rs.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
    const parseRuns: RunResult[] = [];
    const detectRuns: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) {
      parseRuns.push(await run(child, EVENTS, undefined, false));
      detectRuns.push(await run(child, EVENTS, undefined, true));
      const [a, b] = [parseRuns.at(-1)!, detectRuns.at(-1)!];
      process.stderr.write(
        `run ${i + 1}: parse ${fmt(a.perSecond)}/s (${fmt(a.perCpuSecond)}/cpu-s, ${a.dropped} dropped), ` +
          `+detect ${fmt(b.perSecond)}/s (${fmt(b.perCpuSecond)}/cpu-s, ${b.dropped} dropped)\n`,
      );
    }
    const paced = await run(child, 100_000 * SECONDS, 100_000, true);
    const mem = inProcess();
    const p = best(parseRuns);
    const d = best(detectRuns);
    const all = [...parseRuns, ...detectRuns, paced];
    const dropped = all.reduce((a, r) => a + r.dropped, 0);
    const row = (name: string, r: RunResult) =>
      `| ${name} | ${fmt(r.perSecond)} | ${fmt(r.perCpuSecond)} | ${fmt(r.cpuPercent)} % | ${fmt(r.maxStallMs, 1)} ms | ${r.dropped} |`;
    const md = `
## AMI

\`npm run bench:ami\` (\`node --import tsx bench/ami.ts\`), ${machine()}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} when it finished.
The fake Asterisk (test/helpers/ami-server.ts) runs in a child process and sends security events built from the
reference sample (1,000 variants) over TCP on 127.0.0.1. Like Asterisk's \`writetimeout\`, it drops a client whose
socket stays unwritable for 100 ms. Client: AmiSource → ami-framing → amiParser (→ DetectionEngine with the shipped
rules). Flood rows: best of ${RUNS} runs of ${fmt(EVENTS)} events sent as fast as the server can. Target ≥ 100,000 events/s.
"per CPU-second" divides by the client's own CPU time, so it shows what the code costs even when other work
competes for the 2 cores; "client CPU" is the share of one core the client got.

| path | events/s | events per CPU-second | client CPU | longest event-loop stall | sessions dropped |
|---|---|---|---|---|---|
${row("TCP + framing + amiParser (flood)", p)}
${row("TCP + framing + amiParser + detect (flood)", d)}
${row(`paced at 100,000/s for ${SECONDS} s, with detect`, paced)}
| framing only, in-process (${fmt(mem.mbPerCpuSecond)} MiB per CPU-second) | – | ${fmt(mem.framePerCpuSecond)} | – | – | – |
| amiParser only, in-process | – | ${fmt(mem.parsePerCpuSecond)} | – | – | – |

Sessions dropped over all ${all.length} runs: ${dropped}. Events in the paced run: ${fmt(paced.events)} of ${fmt(100_000 * SECONDS)}; decisions: ${fmt(paced.decisions)}.
`;
    writeSection("ami", md);
    process.stdout.write(md);
  } finally {
    child.proc.stdin!.end();
    await new Promise((r) => child.proc.once("exit", r));
  }
}

if (process.argv.includes("--serve")) await serve();
else await main();
