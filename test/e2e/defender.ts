/**
 * Where sipwarden plugs into the lab: `startDefender(lab)` starts the daemon inside the PBX
 * namespace, on Kamailio's log, with the nftables backend (`launchDaemon`). It runs the installed
 * command, bin/sipwarden, on dist/ (`npm run build` first, as .ci/run does); E2E_DEFENDER=src
 * runs it from source instead.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { apiCall } from "../../src/api/client.js";
import type { BanInfo, StatusInfo } from "../../src/api/types.js";
import { LAUNCHER } from "../helpers/daemon-proc.js";
import { ROOT } from "../helpers/paths.js";
import type { SipLab } from "./lab.js";
import { Proc, type RunResult, run, sleep, waitFor } from "./procs.js";

export const MAIN_JS = join(ROOT, "dist", "main.js");

/** A program and its first arguments, which start the CLI. */
export interface Entry {
  program: string;
  args: string[];
}

/** As users start it: the installed command, bin/sipwarden, running this Node. */
const AS_INSTALLED: Entry = { program: LAUNCHER, args: [] };
const FROM_SOURCE: Entry = { program: process.execPath, args: ["--import", "tsx", join(ROOT, "src", "main.ts")] };

/** How the daemon is started. */
function entry(): Entry {
  return process.env.E2E_DEFENDER === "src" ? FROM_SOURCE : AS_INSTALLED;
}

/** A running sipwarden, as the test sees it. */
export interface Defender {
  /** Control socket (`--socket`). */
  readonly socket: string;
  readonly stateDir: string;
  /** The daemon's own stdout+stderr. */
  readonly logFile: string;
  /** Active bans, straight from the control API (fast enough to poll). */
  bans(): Promise<BanInfo[]>;
  status(): Promise<StatusInfo>;
  /** `sipwarden <args> --socket <socket>`: the real CLI, for `status` and `bans`. */
  cli(args: readonly string[]): Promise<RunResult>;
  /** Stops the daemon (SIGTERM, then SIGKILL) and waits for it. Idempotent. */
  stop(): Promise<void>;
  /** From spawn to the first answer of its control API. */
  readonly startupMs: number;
}

/**
 * How long the daemon may take to answer its control API. It answers in about a second here;
 * the budget is wide because a shared CI VM can stall for many seconds (one CI run saw about
 * 20 s pass between spawn and the daemon's first log line), and a slow start is not what this
 * test is about. The time it took is reported; a miss comes with the daemon's process state
 * and Node's diagnostic report (see stallReport).
 */
const STARTUP_BUDGET_MS = 90_000;

/** Why the defended run cannot run here, or false when it can. */
export function defenderSkipReason(): string | false {
  const e = entry();
  // Under CI a missing build is a failure (launchDaemon says why), not a reason to skip.
  if (e === AS_INSTALLED && !existsSync(MAIN_JS) && process.env.CI !== "true")
    return `${MAIN_JS} is missing: run npm run build first`;
  return false;
}

export async function startDefender(lab: SipLab): Promise<Defender> {
  return launchDaemon(lab, { entry: entry() });
}

/**
 * `bin/sipwarden run --log <kamailio log> --format kamailio --backend nftables --state-dir <dir>
 *  --socket <sock> --from-start [-c <config>]` (the installed command, with this Node and
 *  NODE_OPTIONS=--report-on-signal), in the PBX namespace (so its nftables table and conntrack
 *  are the PBX's), output to `<workDir>/sipwarden.log`.
 */
export async function launchDaemon(
  lab: SipLab,
  opts: {
    config?: string;
    extraArgs?: string[];
    /** What starts the CLI; default bin/sipwarden (as installed), running this Node. */
    entry?: Entry;
    /** How long to wait for the control API; default STARTUP_BUDGET_MS. */
    startupBudgetMs?: number;
  } = {},
): Promise<Defender> {
  const stateDir = join(lab.workDir, "sipwarden-state");
  mkdirSync(stateDir, { recursive: true });
  const socket = join(lab.workDir, "sipwarden.sock");
  const logFile = join(lab.workDir, "sipwarden.log");
  const entry = opts.entry ?? AS_INSTALLED;
  const reportDir = join(lab.workDir, "node-report");
  mkdirSync(reportDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SIPWARDEN_NODE: process.execPath,
    // SIGUSR2 makes Node write a diagnostic report (JS stack, libuv handles) if startup stalls.
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --report-on-signal --report-directory=${reportDir}`.trim(),
  };
  const args = [
    ...entry.args,
    "run",
    "--log",
    lab.kamailio.logFile,
    "--format",
    "kamailio",
    "--backend",
    "nftables",
    "--state-dir",
    stateDir,
    "--socket",
    socket,
    "--from-start",
    ...(opts.config ? ["-c", opts.config] : []),
    ...(opts.extraArgs ?? []),
  ];
  const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
  const fd = openSync(logFile, "a");
  let proc: Proc;
  try {
    proc = new Proc(entry.program, args, {
      ns: lab.ns("pbx"),
      env,
      timeoutMs: 30 * 60_000,
      stdio: ["ignore", fd, fd],
      cwd: ROOT,
    });
  } finally {
    closeSync(fd);
  }
  const conn = { socket, timeoutMs: 3000 };
  const ready = await waitFor(
    async () => {
      if (proc.exited) return false;
      try {
        return (await apiCall<StatusInfo>("GET", "/v1/status", undefined, conn)) ? true : undefined;
      } catch {
        return undefined;
      }
    },
    opts.startupBudgetMs ?? STARTUP_BUDGET_MS,
    200,
  );
  const startupMs = Date.now() - proc.started;
  if (ready !== true) {
    const running = !proc.exited;
    const stalled = running ? await stallReport(proc.pid, reportDir) : "";
    await proc.stop();
    const outcome = running ? "still running, stopped now" : `exited (${describeExit(await proc.done)})`;
    throw new Error(
      `sipwarden did not come up within ${startupMs} ms (${outcome}); its output:\n` +
        `${readFileSync(logFile).subarray(logStart).toString("utf8").slice(-3000)}${stalled}`,
    );
  }
  const defender: Defender = {
    socket,
    stateDir,
    logFile,
    bans: () => apiCall<BanInfo[]>("GET", "/v1/bans", undefined, conn),
    status: () => apiCall<StatusInfo>("GET", "/v1/status", undefined, conn),
    cli: (cliArgs) =>
      run(entry.program, [...entry.args, ...cliArgs, "--socket", socket], {
        timeoutMs: 20_000,
        cwd: ROOT,
        env: { ...process.env, SIPWARDEN_NODE: process.execPath },
      }),
    stop: async () => {
      await proc.stop(5000);
    },
    startupMs,
  };
  return defender;
}

function describeExit(r: RunResult): string {
  return r.code !== null ? `exit ${r.code}` : `signal ${r.signal}`;
}

/** The kernel's view of a stalled daemon and, via SIGUSR2, Node's report of where its JS is. */
async function stallReport(pid: number, reportDir: string): Promise<string> {
  const out: string[] = [];
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const state = /^State:\s*(.*)$/m.exec(status)?.[1] ?? "?";
    const wchan = readFileSync(`/proc/${pid}/wchan`, "utf8").trim() || "-";
    // utime and stime, in clock ticks (100 per second on Linux), after the ")" that ends comm.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuMs = (Number(f[11]) + Number(f[12])) * 10;
    out.push(`process ${pid}: state ${state}, wchan ${wchan}, ${cpuMs} ms of CPU used`);
    process.kill(pid, "SIGUSR2");
  } catch (e) {
    out.push(`process ${pid}: ${(e as Error).message}`);
    return `\n--- stall ---\n${out.join("\n")}`;
  }
  // Node names it report.<date>.<time>.<pid>.<thread>.<seq>.json
  let name: string | undefined;
  for (let i = 0; i < 25 && !name; i++) {
    await sleep(200);
    name = readdirSync(reportDir).find((f) => f.split(".")[3] === String(pid) && f.endsWith(".json"));
  }
  if (!name) out.push("no diagnostic report within 5 s: the event loop is blocked (a busy loop or a synchronous call)");
  else {
    try {
      const rep = JSON.parse(readFileSync(join(reportDir, name), "utf8")) as {
        javascriptStack?: { message?: string; stack?: string[] };
        libuv?: ({ type?: string; is_active?: boolean } & Record<string, unknown>)[];
      };
      // The event loop ran the handler, so no JS was running: what it waits on is in libuv.
      const stack = rep.javascriptStack?.stack ?? [];
      if (stack.length > 0 && !/^Unavailable/.test(stack[0] ?? "")) out.push("JS stack:", ...stack.slice(0, 30));
      out.push("event loop idle; active libuv handles and requests:");
      for (const h of rep.libuv ?? []) {
        if (!h.is_active || h.type === "async" || h.type === "check" || h.type === "prepare") continue;
        const { type, is_active: _a, is_referenced: _r, address: _ad, ...rest } = h;
        out.push(`  ${type ?? "?"} ${JSON.stringify(rest)}`);
      }
    } catch (e) {
      out.push(`report ${name}: ${(e as Error).message}`);
    }
  }
  return `\n--- stall ---\n${out.join("\n")}`;
}
