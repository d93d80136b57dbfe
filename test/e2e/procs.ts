/**
 * Child processes for the e2e lab: every program runs with an argument array (never a shell),
 * with a hard time limit, in its own process group so that the lab can end exactly the
 * processes it started (the group's leader PID), and nothing else.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";

/** The outcome of a finished program. */
export interface RunResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the hard time limit ended it. */
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  /** Hard limit: SIGTERM at the limit, SIGKILL 2 s later. */
  timeoutMs: number;
  /** Network namespace to run in (via `ip netns exec`). */
  ns?: string;
  /** Keep at most this many characters of each output stream (the tail). Default 64 KiB. */
  maxOutput?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** File descriptors or "ignore" for stdout/stderr instead of capturing them. */
  stdio?: ["ignore", number | "pipe", number | "pipe"];
  /** Written to the program's stdin, which is then closed. */
  input?: string;
}

/** PIDs (process-group leaders) started here and not yet reaped, for the emergency teardown. */
const live = new Set<number>();

function argv(cmd: string, args: readonly string[], ns?: string): [string, string[]] {
  return ns ? ["ip", ["netns", "exec", ns, cmd, ...args]] : [cmd, [...args]];
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

/** A started program that runs until it exits or is stopped. */
export class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly started = Date.now();
  readonly done: Promise<RunResult>;
  #stdout = "";
  #stderr = "";
  #timedOut = false;
  #timer: NodeJS.Timeout;
  #exited = false;

  constructor(cmd: string, args: readonly string[], opts: RunOptions) {
    const [file, list] = argv(cmd, args, opts.ns);
    const max = opts.maxOutput ?? 65_536;
    this.child = spawn(file, list, {
      detached: true,
      stdio: opts.input !== undefined ? ["pipe", "pipe", "pipe"] : (opts.stdio ?? ["ignore", "pipe", "pipe"]),
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    if (this.child.pid === undefined) throw new Error(`cannot start ${cmd}`);
    this.pid = this.child.pid;
    live.add(this.pid);
    if (opts.input !== undefined) {
      this.child.stdin?.on("error", () => {});
      this.child.stdin?.end(opts.input);
    }
    const keep = (prev: string, chunk: Buffer) => {
      const s = prev + chunk.toString("utf8");
      return s.length > max ? s.slice(s.length - max) : s;
    };
    this.child.stdout?.on("data", (c: Buffer) => {
      this.#stdout = keep(this.#stdout, c);
    });
    this.child.stderr?.on("data", (c: Buffer) => {
      this.#stderr = keep(this.#stderr, c);
    });
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      void this.stop();
    }, opts.timeoutMs);
    this.done = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.#exited) return;
        this.#exited = true;
        clearTimeout(this.#timer);
        live.delete(this.pid);
        resolve({
          code,
          signal,
          stdout: this.#stdout,
          stderr: this.#stderr,
          timedOut: this.#timedOut,
          ms: Date.now() - this.started,
        });
      };
      this.child.on("error", (err) => {
        this.#stderr += String(err);
        finish(null, null);
      });
      this.child.on("close", finish);
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** What the program printed so far (stdout, then stderr), within the kept tail. */
  output(): string {
    return this.#stdout + this.#stderr;
  }

  /** SIGTERM to the group this program leads, then SIGKILL after `graceMs`. */
  async stop(graceMs = 2000): Promise<RunResult> {
    if (!this.#exited) {
      signalGroup(this.pid, "SIGTERM");
      const t = setTimeout(() => signalGroup(this.pid, "SIGKILL"), graceMs);
      await this.done;
      clearTimeout(t);
    }
    return this.done;
  }
}

/** Runs a program to completion (or to its hard limit). Never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Proc(cmd, args, opts).done;
}

/** Like run, but throws with the output when the exit code is not 0. */
export async function mustRun(cmd: string, args: readonly string[], opts: RunOptions): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0)
    throw new Error(
      `${opts.ns ? `[${opts.ns}] ` : ""}${cmd} ${args.join(" ")} failed (${r.timedOut ? "timed out" : `exit ${r.code ?? r.signal}`}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  return r.stdout;
}

/** Synchronous variant for teardown paths (signal handlers, `exit`). Returns stdout or null. */
export function runSync(cmd: string, args: readonly string[], timeoutMs = 5000): string | null {
  try {
    return execFileSync(cmd, [...args], { timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  } catch {
    return null;
  }
}

/** Emergency stop of every process group started here that is still running (SIGKILL, by PID). */
export function killAllStarted(): void {
  for (const pid of live) signalGroup(pid, "SIGKILL");
  live.clear();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it returns a value other than undefined, or the deadline passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await sleep(everyMs);
  }
}
