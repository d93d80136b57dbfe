/**
 * Runs firewall programs: argument arrays only, never a shell, optionally inside a named
 * network namespace (tests and benchmarks keep the host's firewall untouched that way).
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { SipwardenError } from "../core/errors.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Written to the program's stdin, which is then closed. */
  input?: string;
  /** Kill the program (SIGKILL) after this long. */
  timeoutMs?: number;
}

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Firewall tools live in sbin, which a non-login PATH often lacks. */
const EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/** The argv prefix that runs a program inside `netns`, or nothing. */
export function netnsPrefix(netns: string | undefined): string[] {
  if (netns === undefined) return [];
  if (!NETNS_NAME.test(netns)) throw new SipwardenError("USAGE", `bad network namespace name ${JSON.stringify(netns)}`);
  return ["ip", "netns", "exec", netns];
}

/** Full path of an executable on PATH (plus the sbin dirs), or null. */
export function findCommand(name: string): string | null {
  if (name.includes("/")) return isExecutable(name) ? name : null;
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The PATH given to children: the caller's plus the sbin dirs. */
export function childEnv(): NodeJS.ProcessEnv {
  const path = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean)];
  for (const d of EXTRA_DIRS) if (!path.includes(d)) path.push(d);
  return { ...process.env, PATH: path.join(delimiter), LC_ALL: "C" };
}

/**
 * Runs `argv` to completion and returns its exit status and output; it never throws for a
 * non-zero status. A program that cannot be started rejects with `ENFORCER_UNAVAILABLE`.
 */
export function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [program, ...args] = argv;
  if (program === undefined) throw new SipwardenError("USAGE", "empty command");
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"], env: childEnv() });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
      timer.unref();
    }
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", (cause) => {
      if (timer) clearTimeout(timer);
      reject(new SipwardenError("ENFORCER_UNAVAILABLE", `cannot run ${program}: ${cause.message}`, { cause }));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8") + (signal ? `\n(killed by ${signal})` : ""),
        ms: performance.now() - started,
      });
    });
    // A program that exits early closes its stdin; the EPIPE is not the interesting error.
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

/** Shortens a command's stderr for a log line: the first lines, each at most 300 chars. */
export function clipStderr(stderr: string, maxLines = 6): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "");
  const kept = lines.slice(0, maxLines).map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  if (lines.length > maxLines) kept.push(`(${lines.length - maxLines} more lines)`);
  return kept.join("\n");
}
