/**
 * fail2ban side by side with sipwarden in the benchmarks: a private copy of the system's
 * fail2ban configuration with one jail (stock `asterisk` filter, the caller's threshold) whose
 * only action appends `<ip> <epoch seconds with ns>` to a file, so "banned" means the moment
 * fail2ban ran its ban action. fail2ban-server runs in the foreground inside the caller's
 * network namespace with its own socket, pidfile and in-memory database; it never touches a
 * firewall.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { accessSync, constants, cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { normalizeIp } from "../../src/core/address.js";
import type { Lab } from "../../test/helpers/netns.js";
import { track } from "./ban-watch.js";

const SYSTEM_CONF = "/etc/fail2ban";

/** The full path of `cmd` on PATH (plus the sbin directories), or null. */
function which(cmd: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/bin"];
  for (const d of dirs) {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return join(d, cmd);
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

/** Why fail2ban cannot run side by side here, or null when it can. */
export function fail2banUnavailable(): string | null {
  for (const cmd of ["fail2ban-server", "fail2ban-client"]) if (!which(cmd)) return `${cmd} is not installed`;
  if (!existsSync(join(SYSTEM_CONF, "filter.d", "asterisk.conf")))
    return `${SYSTEM_CONF}/filter.d/asterisk.conf missing`;
  return null;
}

/** fail2ban's version line, e.g. `1.0.2`. */
export function fail2banVersion(): string {
  const r = spawnSync("fail2ban-server", ["-V"], { encoding: "utf8" });
  return (r.stdout || r.stderr).trim().split("\n")[0] ?? "unknown";
}

/**
 * pyinotify when the Python that runs fail2ban can import it (fail2ban's fastest file backend),
 * else polling. The interpreter is the one on fail2ban-server's `#!` line, not the first on PATH.
 */
export function fail2banBackend(): "pyinotify" | "polling" {
  let python = "/usr/bin/python3";
  const server = which("fail2ban-server");
  if (server) {
    const first = readFileSync(server, "utf8").split("\n", 1)[0] ?? "";
    const m = /^#!\s*(\S+)/.exec(first);
    if (m?.[1] && !m[1].endsWith("/env")) python = m[1];
  }
  const r = spawnSync(python, ["-c", "import pyinotify"], { stdio: "ignore" });
  return r.status === 0 ? "pyinotify" : "polling";
}

/** `--f2b-backend` as given, or the best one available here. */
export function f2bBackendOption(given: string | undefined): "pyinotify" | "polling" {
  if (given === undefined) return fail2banBackend();
  if (given !== "pyinotify" && given !== "polling")
    throw new Error(`--f2b-backend: pyinotify or polling, not ${given}`);
  return given;
}

export interface Fail2banOptions {
  lab: Lab;
  node: string;
  /** A fresh directory for the configuration copy, socket, pidfile, log and ban record. */
  dir: string;
  /** The log file the jail follows; it must exist. */
  logPath: string;
  maxretry: number;
  findtimeS?: number;
  bantimeS?: number;
  backend?: "pyinotify" | "polling";
  /** Start-up limit (fail2ban reads its whole configuration tree first). */
  readyTimeoutMs?: number;
}

export interface Fail2banRun {
  readonly jail: string;
  readonly backend: "pyinotify" | "polling";
  /** First ban time per (normalised) address, epoch ms (from the action's `date +%s.%N`). */
  bans(): Map<string, number>;
  /** fail2ban's own log, for diagnostics. */
  log(): string;
  stop(): Promise<void>;
}

const JAIL = "asterisk-bench";

function client(lab: Lab, node: string, conf: string, sock: string, args: string[]) {
  return lab.exec(node, ["fail2ban-client", "-c", conf, "-s", sock, ...args], { allowFail: true, timeoutMs: 20_000 });
}

/** Starts fail2ban-server in the foreground and resolves once the jail answers `status`. */
export async function startFail2ban(o: Fail2banOptions): Promise<Fail2banRun> {
  const conf = join(o.dir, "conf");
  const sock = join(o.dir, "f2b.sock");
  const pid = join(o.dir, "f2b.pid");
  const logFile = join(o.dir, "fail2ban.log");
  const record = join(o.dir, "bans.txt");
  const backend = o.backend ?? fail2banBackend();
  cpSync(SYSTEM_CONF, conf, { recursive: true });
  // Only our jail may run: drop whatever the distribution or the admin enabled.
  for (const sub of ["jail.d", "fail2ban.d"]) {
    const d = join(conf, sub);
    if (existsSync(d)) for (const f of readdirSync(d)) rmSync(join(d, f), { recursive: true, force: true });
  }
  rmSync(join(conf, "jail.local"), { force: true });
  writeFileSync(record, "");
  writeFileSync(
    join(conf, "fail2ban.local"),
    `[Definition]\nloglevel = INFO\nlogtarget = ${logFile}\nsocket = ${sock}\npidfile = ${pid}\ndbfile = :memory:\n`,
  );
  // `%%` is ConfigParser's escape for a literal `%`.
  writeFileSync(
    join(conf, "action.d", "bench-record.conf"),
    [
      "[Definition]",
      "actionstart =",
      "actionstop =",
      "actioncheck =",
      `actionban = printf '%%s %%s\\n' '<ip>' "$(date +%%s.%%N)" >> ${record}`,
      "actionunban =",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(conf, "jail.local"),
    [
      `[${JAIL}]`,
      "enabled = true",
      "filter = asterisk",
      `logpath = ${o.logPath}`,
      `backend = ${backend}`,
      `maxretry = ${o.maxretry}`,
      `findtime = ${o.findtimeS ?? 600}`,
      `bantime = ${o.bantimeS ?? 3600}`,
      "logtimezone = UTC",
      "action = bench-record",
      "",
    ].join("\n"),
  );

  const child: ChildProcess = track(
    o.lab.spawn(o.node, ["fail2ban-server", "-f", "-x", "-c", conf, "-s", sock, "-p", pid]),
  );
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await client(o.lab, o.node, conf, sock, ["stop"]);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const end = Date.now() + (o.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fail2ban-server exited with ${child.exitCode}: ${out}`);
    const r = await client(o.lab, o.node, conf, sock, ["status", JAIL]);
    if (r.code === 0 && r.stdout.includes("Currently banned")) break;
    if (Date.now() > end) {
      await stop();
      throw new Error(`fail2ban jail ${JAIL} did not come up: ${r.stderr || r.stdout} ${out}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }

  return {
    jail: JAIL,
    backend,
    bans() {
      const m = new Map<string, number>();
      for (const line of readFileSync(record, "utf8").split("\n")) {
        const [ip, t] = line.trim().split(/\s+/);
        const addr = ip ? (normalizeIp(ip) ?? ip) : undefined;
        if (addr && t && !m.has(addr)) m.set(addr, Number(t) * 1000);
      }
      return m;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "") + out,
    stop,
  };
}
