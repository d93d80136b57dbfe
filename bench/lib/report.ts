/**
 * Shared benchmark plumbing: a section of BENCHMARKS.md per benchmark (between markers, so
 * several benchmarks update the same file without touching each other), machine facts, and
 * running a command under GNU time for its peak RSS.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "..");
export const BENCH_DIR = join(ROOT, ".bench");

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/**
 * The machine's speed right now: a fixed CPU-bound loop (a 32-bit multiplicative hash over 13
 * characters), best of 5 × 1,000,000, in ns per iteration. These benchmarks run on shared VMs
 * whose speed changes by up to 2× within an hour with no steal time reported; this figure,
 * taken before and after a benchmark, tells whether two runs met the same machine.
 */
export function referenceLoopNs(): number {
  const s = "198.51.100.23 and some more text";
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let r = 0; r < 5; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 1_000_000; i++) {
      let h = i;
      for (let k = 0; k < 13; k++) h = (Math.imul(h, 31) + s.charCodeAt(k)) | 0;
      sink ^= h;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  if (sink === 0.5) process.stderr.write(""); // uses the result, so the loop is not dropped
  return best;
}

/** The line that reports `referenceLoopNs()` before and after a benchmark. */
export function referenceLine(before: number, after: number): string {
  return `Machine speed reference (\`referenceLoopNs\` in bench/lib/report.ts, lower is faster): ${before.toFixed(1)} ns before the runs, ${after.toFixed(1)} ns after.`;
}

/** The middle value (the upper one of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Replaces (or appends) the section `id` of BENCHMARKS.md. */
export function writeSection(id: string, markdown: string): void {
  const file = join(ROOT, "BENCHMARKS.md");
  const begin = `<!-- bench:${id}:begin -->`;
  const end = `<!-- bench:${id}:end -->`;
  let text = existsSync(file)
    ? readFileSync(file, "utf8")
    : "# Benchmarks\n\nEvery figure below is written by the benchmark named in its section; rerun the command to refresh it.\n";
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + end.length);
  else text = text.trimEnd() + "\n\n" + block + "\n";
  writeFileSync(file, text);
}

export interface TimedRun {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Peak resident set size in KiB, from GNU time. */
  maxRssKiB: number;
}

/** Runs `cmd args` under /usr/bin/time -f %M and returns its output, wall time and peak RSS. */
export function timed(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn("/usr/bin/time", ["-f", "__MAXRSS__%M", cmd, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const m = /__MAXRSS__(\d+)/.exec(stderr);
      resolve({
        code: code ?? -1,
        stdout,
        stderr: stderr.replace(/__MAXRSS__\d+\n?/, ""),
        wallMs,
        maxRssKiB: m ? Number(m[1]) : Number.NaN,
      });
    });
  });
}

export const fmt = (v: number, digits = 0) =>
  new Intl.NumberFormat("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v);
