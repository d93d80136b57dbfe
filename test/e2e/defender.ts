/**
 * Where sipwarden plugs into the lab: `startDefender(lab)` starts the daemon inside the PBX
 * namespace, on Kamailio's log, with the nftables backend (`launchDaemon`). It runs dist/main.js
 * (`npm run build` first, as .ci/run does); E2E_DEFENDER=src runs it from source instead.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { apiCall } from "../../src/api/client.js";
import type { BanInfo, StatusInfo } from "../../src/api/types.js";
import { ROOT } from "../helpers/paths.js";
import type { SipLab } from "./lab.js";
import { Proc, type RunResult, run, waitFor } from "./procs.js";

export const MAIN_JS = join(ROOT, "dist", "main.js");
const FROM_SOURCE = ["--import", "tsx", join(ROOT, "src", "main.ts")];

/** How the daemon is started. */
function entry(): string[] {
  return process.env.E2E_DEFENDER === "src" ? FROM_SOURCE : [MAIN_JS];
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
  /** `node dist/main.js <args> --socket <socket>`: the real CLI, for `status` and `bans`. */
  cli(args: readonly string[]): Promise<RunResult>;
  /** Stops the daemon (SIGTERM, then SIGKILL) and waits for it. Idempotent. */
  stop(): Promise<void>;
}

/** Why the defended run cannot run here, or false when it can. */
export function defenderSkipReason(): string | false {
  const e = entry();
  // Under CI a missing build is a failure (launchDaemon says why), not a reason to skip.
  if (e[0] === MAIN_JS && !existsSync(MAIN_JS) && process.env.CI !== "true")
    return `${MAIN_JS} is missing: run npm run build first`;
  return false;
}

export async function startDefender(lab: SipLab): Promise<Defender> {
  return launchDaemon(lab, { entry: entry() });
}

/**
 * `node dist/main.js run --log <kamailio log> --format kamailio --backend nftables
 *  --state-dir <dir> --socket <sock> --from-start [-c <config>]`, in the PBX namespace (so its
 * nftables table and conntrack are the PBX's), output to `<workDir>/sipwarden.log`.
 */
export async function launchDaemon(
  lab: SipLab,
  opts: {
    config?: string;
    extraArgs?: string[];
    /** Node arguments that start the CLI; default `[dist/main.js]` (e.g. `["--import", "tsx", "src/main.ts"]`). */
    entry?: string[];
  } = {},
): Promise<Defender> {
  const stateDir = join(lab.workDir, "sipwarden-state");
  mkdirSync(stateDir, { recursive: true });
  const socket = join(lab.workDir, "sipwarden.sock");
  const logFile = join(lab.workDir, "sipwarden.log");
  const entry = opts.entry ?? [MAIN_JS];
  const args = [
    ...entry,
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
  const fd = openSync(logFile, "a");
  let proc: Proc;
  try {
    proc = new Proc(process.execPath, args, {
      ns: lab.ns("pbx"),
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
    20_000,
    200,
  );
  if (ready !== true) {
    await proc.stop();
    throw new Error(`sipwarden did not come up; its output:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
  }
  const defender: Defender = {
    socket,
    stateDir,
    logFile,
    bans: () => apiCall<BanInfo[]>("GET", "/v1/bans", undefined, conn),
    status: () => apiCall<StatusInfo>("GET", "/v1/status", undefined, conn),
    cli: (cliArgs) =>
      run(process.execPath, [...entry, ...cliArgs, "--socket", socket], { timeoutMs: 20_000, cwd: ROOT }),
    stop: async () => {
      await proc.stop(5000);
    },
  };
  return defender;
}
