/**
 * Burst: 1,000,000 Asterisk lines appended to the followed log in one write, then the time
 * until the last attacker (an address that appears only in the very last line) is banned,
 * sipwarden and fail2ban side by side under the same maxretry-1 threshold. sipwarden's ban is
 * seen by `nft monitor` in the namespace; fail2ban's by the timestamp its ban action writes
 * (no firewall call, so a lower bound). The log comes from bench/gen-asterisk-log.ts (seed 42),
 * restamped to end at the moment of each append so that every line is recent.
 *
 *   node --import tsx bench/burst.ts [--lines 1000000] [--runs 3] [--f2b-timeout 120]
 *                                    [--no-fail2ban] [--f2b-backend polling] [--no-variants] [--no-write]
 *
 * Runs sipwarden as users do, through bin/sipwarden, when dist/ exists (`npm run build` first),
 * else from the TypeScript sources.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { asteriskStamp } from "../test/helpers/daemon-proc.js";
import { type Lab, netnsUnavailable, withLab } from "../test/helpers/netns.js";
import { generateAsteriskLog } from "./gen-asterisk-log.js";
import {
  killTrackedOnSignal,
  loadAverage,
  MAXRETRY1_RULE,
  NftWatch,
  peakRssMiB,
  sleep,
  startSipwarden,
  trackDir,
} from "./lib/ban-watch.js";
import { f2bBackendOption, fail2banUnavailable, fail2banVersion, startFail2ban } from "./lib/fail2ban.js";
import { fmt, machine, ROOT, writeSection } from "./lib/report.js";

const { values: opt } = parseArgs({
  options: {
    lines: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    "f2b-timeout": { type: "string", default: "120" },
    "no-fail2ban": { type: "boolean", default: false },
    "f2b-backend": { type: "string" },
    "no-variants": { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const LINES = Number(opt.lines);
const RUNS = Number(opt.runs);
const F2B_BACKEND = f2bBackendOption(opt["f2b-backend"]);
const F2B_TIMEOUT_MS = Number(opt["f2b-timeout"]) * 1000;
const SW_TIMEOUT_MS = 120_000;
/** The generated log spans ~0.5 ms per line (~8 min); squeezed into this span ending "now". */
const SPAN_MS = 60_000;
/** Only this address's line is last and it appears nowhere else. */
const LAST = "2001:db8:ffff::1";
const lastLine = (t: number) =>
  `${asteriskStamp(t)} NOTICE[2191] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '"100" <sip:100@203.0.113.10>' failed for '[${LAST}]:5060' (callid: burst-last) - Failed to authenticate\n`;

const STAMP = /^2024-05-1\d[ T]\d\d:\d\d:\d\d$/;

/**
 * A copy of the generated log (stamped from 2024-05-14) with every date moved so the log ends
 * at `end` and spans SPAN_MS. Same width, patched in place: a 180 MB string is never built.
 */
function restamp(base: Buffer, end: number): Buffer {
  const out = Buffer.from(base);
  const origEnd = lastStampMs(base);
  const origStart = Date.UTC(2024, 4, 14);
  const scale = Math.max(1, (origEnd - origStart) / SPAN_MS);
  const cache = new Map<string, string>();
  for (let i = out.indexOf("2024-05-1"); i >= 0; i = out.indexOf("2024-05-1", i + 19)) {
    const old = out.toString("latin1", i, i + 19);
    if (!STAMP.test(old)) continue;
    let rep = cache.get(old);
    if (rep === undefined) {
      const t = Date.parse(`${old.replace(" ", "T")}Z`);
      const iso = new Date(end - Math.round((origEnd - t) / scale)).toISOString().slice(0, 19);
      rep = old[10] === "T" ? iso : iso.replace("T", " ");
      cache.set(old, rep);
    }
    out.write(rep, i, "latin1");
  }
  return Buffer.concat([out, Buffer.from(lastLine(end), "latin1")]);
}

function lastStampMs(buf: Buffer): number {
  const tail = buf.toString("latin1", Math.max(0, buf.length - 4096));
  const all = [...tail.matchAll(/\[(2024-05-1\d \d\d:\d\d:\d\d)\]/g)];
  const last = all.at(-1)?.[1];
  if (!last) throw new Error("no timestamp at the end of the generated log");
  return Date.parse(`${last.replace(" ", "T")}Z`);
}

interface ToolBurst {
  /** Start of the append → last attacker banned, ms; null when not within the limit. */
  lastMs: number | null;
  /** Wall time of the append itself (one write of the whole content). */
  writeMs: number;
  /** Distinct addresses banned when the last attacker was banned (or at the limit). */
  bannedAtLast: number;
  /** Distinct addresses banned once the tool went quiet. */
  bannedTotal: number;
  /** sipwarden only: the daemon's peak RSS. */
  rssMiB?: number;
}

/** sipwarden as shipped, then diagnostic variants that switch off one cost at a time. */
const VARIANTS = [
  { label: "**sipwarden** (default config)", yaml: "" },
  { label: "sipwarden, diagnostic: `store.recentEvents: 0`", yaml: "store: { recentEvents: 0 }\n" },
  {
    label: "sipwarden, diagnostic: `store.recentEvents: 0`, `enforce.conntrackFlush: false`",
    yaml: "store: { recentEvents: 0 }\nenforce: { conntrackFlush: false }\n",
  },
] as const;

async function sipwardenBurst(lab: Lab, dir: string, base: Buffer, extraYaml: string): Promise<ToolBurst> {
  const watch = new NftWatch(lab, "pbx");
  const sw = await startSipwarden(lab, "pbx", dir, { extraYaml });
  try {
    await sleep(500);
    const data = restamp(base, Date.now());
    const t0 = performance.now();
    appendFileSync(sw.log, data);
    const writeMs = performance.now() - t0;
    const seen = await watch.wait(LAST, SW_TIMEOUT_MS);
    const bannedAtLast = seen ? [...watch.seen.values()].filter((x) => x.at <= seen.at).length : watch.seen.size;
    // Whatever is still in flight lands within a batch window or two; wait until it is quiet.
    let size = -1;
    while (watch.seen.size !== size) {
      size = watch.seen.size;
      await sleep(1000);
    }
    return {
      lastMs: seen ? seen.at - t0 : null,
      writeMs,
      bannedAtLast,
      bannedTotal: watch.seen.size,
      rssMiB: peakRssMiB(sw.daemon.child.pid),
    };
  } finally {
    await sw.daemon.stop();
    watch.stop();
  }
}

async function fail2banBurst(lab: Lab, dir: string, base: Buffer): Promise<ToolBurst> {
  const log = join(dir, "full");
  writeFileSync(log, "");
  const f2b = await startFail2ban({ lab, node: "pbx", dir, logPath: log, maxretry: 1, backend: F2B_BACKEND });
  try {
    const data = restamp(base, Date.now());
    const t0 = performance.timeOrigin + performance.now();
    appendFileSync(log, data);
    const writeMs = performance.timeOrigin + performance.now() - t0;
    const end = t0 + F2B_TIMEOUT_MS;
    let bans = f2b.bans();
    while (!bans.has(LAST) && Date.now() < end) {
      await sleep(250);
      bans = f2b.bans();
    }
    const last = bans.get(LAST);
    const bannedAtLast = last === undefined ? bans.size : [...bans.values()].filter((t) => t <= last).length;
    let size = -1;
    if (last !== undefined)
      while (bans.size !== size) {
        size = bans.size;
        await sleep(1000);
        bans = f2b.bans();
      }
    return { lastMs: last === undefined ? null : last - t0, writeMs, bannedAtLast, bannedTotal: bans.size };
  } finally {
    await f2b.stop();
  }
}

interface Run {
  /** One per variant in use, in VARIANTS order. */
  sw: ToolBurst[];
  f2b: ToolBurst | null;
  load: string;
}

/** Every measurement gets a fresh namespace, so no tool sees what an earlier one left in nft. */
async function oneRun(base: Buffer, variants: number, withF2b: boolean): Promise<Run> {
  const dir = trackDir(mkdtempSync(join(tmpdir(), "sw-bench-burst-")));
  const spec = { nodes: [{ name: "pbx" }] };
  try {
    const sw: ToolBurst[] = [];
    for (let v = 0; v < variants; v++)
      sw.push(await withLab(spec, (lab) => sipwardenBurst(lab, join(dir, `sw${v}`), base, VARIANTS[v]!.yaml)));
    const load = loadAverage();
    let f2b: ToolBurst | null = null;
    if (withF2b) {
      mkdirSync(join(dir, "f2b"));
      f2b = await withLab(spec, (lab) => fail2banBurst(lab, join(dir, "f2b"), base));
    }
    return { sw, f2b, load };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sec = (ms: number | null, limitMs: number) =>
  ms === null ? `> ${fmt(limitMs / 1000)} s` : `${fmt(ms / 1000, 2)} s`;
const key = (t: ToolBurst | null | undefined) => t?.lastMs ?? Number.POSITIVE_INFINITY;
const best = (xs: ToolBurst[]) => [...xs].sort((a, b) => key(a) - key(b))[0];

async function main(): Promise<void> {
  killTrackedOnSignal();
  const why = netnsUnavailable();
  if (why) throw new Error(`the burst benchmark needs a namespace lab: ${why}`);
  const f2bWhy = opt["no-fail2ban"] ? "disabled with --no-fail2ban" : fail2banUnavailable();
  const variants = opt["no-variants"] ? 1 : VARIANTS.length;
  const dist = existsSync(join(ROOT, "dist", "main.js"));
  const genDir = trackDir(mkdtempSync(join(tmpdir(), "sw-bench-burst-gen-")));
  let base: Buffer;
  let attackers: number;
  let attackLines: number;
  try {
    const g = await generateAsteriskLog(join(genDir, "full"), LINES, 42);
    base = readFileSync(join(genDir, "full"));
    attackers = g.byAddress.size;
    attackLines = g.attackLines;
  } finally {
    rmSync(genDir, { recursive: true, force: true });
  }
  const expected = attackers + 1;
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await oneRun(base, variants, f2bWhy === null);
    runs.push(r);
    process.stderr.write(
      `run ${i + 1}: sipwarden ${r.sw.map((t) => `${sec(t.lastMs, SW_TIMEOUT_MS)} (${t.bannedTotal}/${expected})`).join(", ")}` +
        (r.f2b ? `; fail2ban ${sec(r.f2b.lastMs, F2B_TIMEOUT_MS)} (${r.f2b.bannedTotal}/${expected} banned)` : "") +
        `; load ${r.load}\n`,
    );
  }
  const f2bRuns = runs.map((r) => r.f2b).filter((r): r is ToolBurst => r !== null);
  const mib = (base.length / 2 ** 20).toFixed(1);
  const row = (name: string, t: ToolBurst, limit: number, ref: string) =>
    `| ${name} | **${sec(t.lastMs, limit)}** | ${t.lastMs === null ? "–" : sec(t.lastMs - t.writeMs, limit)} | ${t.bannedAtLast} / ${expected} | ${t.bannedTotal} / ${expected} | ${t.rssMiB === undefined || Number.isNaN(t.rssMiB) ? "–" : `${fmt(t.rssMiB)} MiB`} | ${ref} |`;
  const spread = (xs: ToolBurst[], limit: number) => xs.map((t) => sec(t.lastMs, limit)).join(" / ");

  const lines = [
    "## Burst (`bench/burst.ts`)",
    "",
    `\`npm run bench:burst\` (\`node --import tsx bench/burst.ts\`, ${dist ? "sipwarden through bin/sipwarden: `npm run build` first" : "TypeScript sources via tsx"}), ${machine()}; load average ${runs.map((r) => r.load).join(" | ")} after the sipwarden part of each run (the machine is shared with other work).`,
    `Log: \`bench/gen-asterisk-log.ts\`, ${fmt(LINES)} lines (seed 42, ${mib} MiB, ${fmt(attackLines)} attack lines in 10 formats from ${attackers} attackers), restamped to span the last ${SPAN_MS / 1000} s, plus one last line from ${LAST}, an address found nowhere else. Each tool starts on an empty file; the whole content is then appended in one write (${runs.map((r) => fmt(r.sw[0]!.writeMs)).join(" / ")} ms) and the clock runs from the start of that write until ${LAST} is banned. Rule: maxretry 1 on both sides (sipwarden: the \`type: instant\` rule below, with \`policy.ipv6Prefix: 128\` so that it bans single addresses as fail2ban does). Both tools run in a network namespace the benchmark creates.`,
    "- **sipwarden**: `sipwarden run --backend nftables`; bans are timed by `nft monitor new elements` in the namespace (committed to the kernel set). The diagnostic rows switch off one cost at a time to show where the time goes; they are not recommended settings.",
    f2bWhy
      ? `- **fail2ban**: not run (${f2bWhy}).`
      : `- **fail2ban ${fail2banVersion()}**: jail \`filter = asterisk\` (stock), \`maxretry = 1\`, \`findtime = 600\`, \`backend = ${F2B_BACKEND}\` (${opt["f2b-backend"] ? "chosen with `--f2b-backend`" : F2B_BACKEND === "pyinotify" ? "python3-pyinotify is installed" : "python3-pyinotify is not installed"}), default \`loglevel = INFO\`; the ban action only writes \`<ip> $(date +%s.%N)\` to a file (no firewall call: a lower bound). Stopped after ${F2B_TIMEOUT_MS / 1000} s.`,
    "",
    `Best of ${RUNS} runs:`,
    "",
    "| tool | append → last attacker banned | same, from the end of the write | banned by then | banned in all | peak RSS | target / reference |",
    "|---|---|---|---|---|---|---|",
  ];
  for (let v = 0; v < variants; v++)
    lines.push(row(VARIANTS[v]!.label, best(runs.map((r) => r.sw[v]!))!, SW_TIMEOUT_MS, v === 0 ? "≤ 2 s" : ""));
  const bestF2b = best(f2bRuns);
  if (bestF2b) lines.push(row("**fail2ban**", bestF2b, F2B_TIMEOUT_MS, "earlier measurement here: 65 s"));
  lines.push(
    "",
    `Spread over the ${RUNS} runs (append → last attacker banned): ${VARIANTS.slice(0, variants)
      .map(
        (v, i) =>
          `${v.label.replace(/\*\*/g, "")} ${spread(
            runs.map((r) => r.sw[i]!),
            SW_TIMEOUT_MS,
          )}`,
      )
      .join("; ")}` + (f2bRuns.length ? `; fail2ban ${spread(f2bRuns, F2B_TIMEOUT_MS)}.` : "."),
    "",
    "<details><summary>The sipwarden rule used</summary>",
    "",
    "```yaml",
    MAXRETRY1_RULE.trim(),
    "```",
    "</details>",
  );
  const md = lines.join("\n");
  process.stdout.write(`${md}\n`);
  if (!opt["no-write"]) writeSection("burst", md);
}

await main();
