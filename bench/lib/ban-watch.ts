/**
 * Plumbing shared by the time-to-ban benchmarks (latency, burst): a sipwarden daemon with a
 * maxretry-1 rule inside a namespace lab, `nft monitor` in the same namespace to timestamp the
 * moment each address reaches the kernel set (no polling: the kernel pushes the element), and
 * the statistics the reports print.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { normalizeIp } from "../../src/core/address.js";
import { type DaemonProc, startDaemon } from "../../test/helpers/daemon-proc.js";
import type { Lab } from "../../test/helpers/netns.js";
import { ROOT } from "../../test/helpers/paths.js";

/** Children a benchmark started; killed by PID if the benchmark is interrupted. */
const tracked = new Set<ChildProcess>();

/** Remembers a child for `killTrackedOnSignal`; forgets it once it has exited. */
export function track(c: ChildProcess): ChildProcess {
  tracked.add(c);
  c.once("exit", () => tracked.delete(c));
  return c;
}

const scratch = new Set<string>();

/** A temporary directory to delete if the benchmark is interrupted; returns it. */
export function trackDir(dir: string): string {
  scratch.add(dir);
  return dir;
}

/**
 * On SIGINT/SIGTERM, kill every tracked child (daemon, fail2ban, nft monitor) by PID and exit;
 * the lab's exit hook then deletes the namespaces. Without this a Ctrl-C would skip the
 * `finally` blocks and leave the daemon and fail2ban running, and temporary files behind.
 */
export function killTrackedOnSignal(): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => {
      for (const c of tracked) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      for (const d of scratch) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    });
}

/**
 * The fail2ban `asterisk` filter's counterpart at maxretry 1: any failed login, unknown
 * account, ACL refusal or unknown extension bans at once.
 */
export const MAXRETRY1_RULE = `id: bench-maxretry-1
description: Any failed SIP/IAX/AMI attempt (benchmark, maxretry 1)
filter:
  kind: [auth_failed, unknown_account, acl_denied, no_extension]
type: instant
ban: 1h
`;

/** One element reaching the set, as the kernel reported it. */
export interface SeenElement {
  /** `performance.now()` when the monitor line arrived. */
  at: number;
  /** Epoch ms, same moment. */
  wall: number;
}

/**
 * `nft monitor new elements` in a lab node, filtered to one table. nft flushes each event
 * line, so the arrival time is the kernel's commit time plus a pipe hop.
 */
export class NftWatch {
  readonly seen = new Map<string, SeenElement>();
  private readonly waiters = new Map<string, ((s: SeenElement) => void)[]>();
  private readonly child: ChildProcess;
  private buf = "";

  /**
   * `nice`: run the monitor at this niceness (e.g. -10) so that on a busy machine the
   * measuring side is not what waits for a CPU.
   */
  constructor(lab: Lab, node: string, opts: { table?: string; nice?: number } = {}) {
    const table = opts.table ?? "sipwarden";
    const nice = opts.nice === undefined ? [] : ["nice", "-n", String(opts.nice)];
    this.child = track(lab.spawn(node, [...nice, "nft", "monitor", "new", "elements"]));
    const prefix = `add element inet ${table} `;
    this.child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      const s: SeenElement = { at: performance.now(), wall: Date.now() };
      this.buf += d;
      const lines = this.buf.split("\n");
      this.buf = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith(prefix)) continue;
        const a = line.indexOf("{");
        const b = line.lastIndexOf("}");
        if (a < 0 || b < a) continue;
        for (const part of line.slice(a + 1, b).split(",")) {
          const ip = normalizeIp(part.trim().split(/\s+/)[0] ?? "");
          if (!ip || this.seen.has(ip)) continue;
          this.seen.set(ip, s);
          for (const w of this.waiters.get(ip) ?? []) w(s);
          this.waiters.delete(ip);
        }
      }
    });
    this.child.stderr?.resume();
  }

  /** Resolves when `ip` is in the set, or with null after `timeoutMs`. */
  wait(ip: string, timeoutMs: number): Promise<SeenElement | null> {
    const known = this.seen.get(ip);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const ws = this.waiters.get(ip)?.filter((w) => w !== done);
        if (ws?.length) this.waiters.set(ip, ws);
        else this.waiters.delete(ip);
        resolve(null);
      }, timeoutMs);
      const done = (s: SeenElement) => {
        clearTimeout(timer);
        resolve(s);
      };
      this.waiters.set(ip, [...(this.waiters.get(ip) ?? []), done]);
    });
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

export interface SwDaemon {
  daemon: DaemonProc;
  log: string;
}

/**
 * Starts `sipwarden run` (nftables backend) in the lab node, following `log` (created empty),
 * with the maxretry-1 rule as its only rule and per-address IPv6 bans so that counts compare
 * with fail2ban's. `extraYaml` adds top-level config sections and `nice` runs the daemon at
 * that niceness (both for diagnostic variants only).
 */
export async function startSipwarden(
  lab: Lab,
  node: string,
  dir: string,
  opts: { extraYaml?: string; nice?: number } = {},
): Promise<SwDaemon> {
  const rules = join(dir, "rules");
  mkdirSync(rules, { recursive: true });
  writeFileSync(join(rules, "bench-maxretry-1.yaml"), MAXRETRY1_RULE);
  const cfg = join(dir, "sipwarden.yaml");
  writeFileSync(
    cfg,
    `time: { zone: UTC }\nrules: { dirs: [${JSON.stringify(rules)}] }\npolicy: { ipv6Prefix: 128 }\n${opts.extraYaml ?? ""}`,
  );
  const log = join(dir, "full");
  writeFileSync(log, "");
  const daemon = await startDaemon({
    dir,
    args: ["-c", cfg, "--log", log, "--format", "asterisk", "--backend", "nftables"],
    wrap: ["ip", "netns", "exec", lab.ns(node), ...(opts.nice === undefined ? [] : ["nice", "-n", String(opts.nice)])],
    // As users run it (bin/sipwarden and its Node options) once built; else from the sources.
    launcher: existsSync(join(ROOT, "dist", "main.js")),
  });
  track(daemon.child);
  return { daemon, log };
}

/** What the daemon logged when a ban landed in the firewall. */
export interface LoggedBan {
  /** Its own time to ban: record read → nft commit, whole ms. */
  ms: number;
  /** Epoch ms of the log line (right after the commit). */
  at: number;
}

/** The daemon's "banned" lines per address (first one each), from its JSON log. */
export function daemonBans(output: string): Map<string, LoggedBan> {
  const m = new Map<string, LoggedBan>();
  for (const line of output.split("\n")) {
    if (!line.includes('"banned ')) continue;
    try {
      const o = JSON.parse(line) as { ip?: string; ms?: number; msg?: string; time?: string | number };
      const at = typeof o.time === "number" ? o.time : Date.parse(o.time ?? "");
      if (o.ip && typeof o.ms === "number" && o.msg?.startsWith("banned ") && !m.has(o.ip))
        m.set(o.ip, { ms: o.ms, at });
    } catch {
      // A line that is not JSON (a stack trace) carries no figure.
    }
  }
  return m;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `load average` now, for the report: the machine is shared. */
export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
}

/** Peak RSS (VmHWM) of a live process in MiB, or NaN when it cannot be read. */
export function peakRssMiB(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
