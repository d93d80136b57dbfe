/**
 * Runs `sipwarden run` as a real child process for daemon tests, and talks to it through
 * its control socket. Every child is killed by PID in `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiCall, apiRequest } from "../../src/api/client.js";
import type { BanInfo, StatusInfo } from "../../src/api/types.js";
import { ROOT } from "./paths.js";

export interface DaemonProc {
  child: ChildProcess;
  dir: string;
  socket: string;
  stateDir: string;
  output: () => string;
  status(): Promise<StatusInfo>;
  bans(): Promise<BanInfo[]>;
  /** Resolves when the process has exited; with a signal, sends it first. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = "sw-daemon-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes a config file into `dir` and returns its path. */
export function writeConfig(dir: string, yaml: string): string {
  const f = join(dir, "sipwarden.yaml");
  writeFileSync(f, yaml);
  return f;
}

export async function waitFor<T>(
  what: string,
  fn: () => T | Promise<T>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface StartOptions {
  dir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Prefix command, e.g. ["ip", "netns", "exec", ns]. */
  wrap?: string[];
  /** Wait until the control socket answers (default true). */
  ready?: boolean;
  /**
   * Start it as users do, through bin/sipwarden (with SIPWARDEN_NODE set to this Node), instead
   * of `node dist/main.js`. Needs the build.
   */
  launcher?: boolean;
}

export const LAUNCHER = join(ROOT, "bin", "sipwarden");

export async function startDaemon(opts: StartOptions = {}): Promise<DaemonProc> {
  const dir = opts.dir ?? tempDir();
  const socket = join(dir, "ctl.sock");
  const stateDir = join(dir, "state");
  const built = existsSync(join(ROOT, "dist", "main.js"));
  if (opts.launcher && !built) throw new Error("startDaemon({ launcher: true }) needs the build: npm run build");
  const cli =
    built && process.env.SW_TEST_TSX !== "1"
      ? [join(ROOT, "dist", "main.js")]
      : ["--import", "tsx", join(ROOT, "src", "main.ts")];
  const args = [
    ...(opts.launcher ? [] : cli),
    "run",
    "--socket",
    socket,
    "--state-dir",
    stateDir,
    "--json-logs",
    ...(opts.args ?? []),
  ];
  const program = opts.launcher ? LAUNCHER : process.execPath;
  const cmd = opts.wrap ? opts.wrap[0]! : program;
  const full = opts.wrap ? [...opts.wrap.slice(1), program, ...args] : args;
  const child = spawn(cmd, full, {
    cwd: ROOT,
    env: { ...process.env, ...(opts.launcher ? { SIPWARDEN_NODE: process.execPath } : {}), ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const p: DaemonProc = {
    child,
    dir,
    socket,
    stateDir,
    output: () => out,
    status: () => apiCall<StatusInfo>("GET", "/v1/status", undefined, { socket }),
    bans: () => apiCall<BanInfo[]>("GET", "/v1/bans", undefined, { socket }),
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  if (opts.ready !== false) {
    try {
      await waitFor(
        "the daemon's control socket",
        async () => {
          if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${out}`);
          return (await apiRequest("GET", "/v1/status", undefined, { socket, timeoutMs: 1000 })).status === 200;
        },
        30_000,
        100,
      );
    } catch (e) {
      await p.stop("SIGKILL");
      throw e;
    }
  }
  return p;
}

/** `[YYYY-MM-DD HH:MM:SS]` in UTC, Asterisk's `dateformat=%F %T`. */
export function asteriskStamp(t = Date.now()): string {
  return `[${new Date(t).toISOString().slice(0, 19).replace("T", " ")}]`;
}

/** One PJSIP failed-authentication line from `ip`, stamped now (UTC). */
export function pjsipFailure(ip: string, n: number, t = Date.now()): string {
  return `${asteriskStamp(t)} NOTICE[2191] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '"${100 + (n % 50)}" <sip:${100 + (n % 50)}@203.0.113.10>' failed for '${ip}:5060' (callid: t${n}-${ip}) - Failed to authenticate`;
}

export const UTC_CONFIG = "time: { zone: UTC }\n";
