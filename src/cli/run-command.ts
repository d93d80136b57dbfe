/**
 * `sipwarden run`: the daemon in the foreground (systemd runs it this way). Command-line
 * flags override the config file, so that common cases need no config file at all.
 */
import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import { DEFAULT_CONFIG_PATH } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { normalizeIp, splitHostPort } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import { parseAmiUrl } from "../sources/ami-url.js";

export interface RunFlags {
  config: string;
  log?: string[];
  format: "auto" | "asterisk" | "kamailio" | "freeswitch";
  backend?: "auto" | "nftables" | "ipset" | "dry-run";
  stateDir?: string;
  socket?: string;
  fromStart?: boolean;
  ami?: string[];
  logLevel?: string;
  pretty?: boolean;
  /** StatsD receiver, `host:port` or `[v6]:port`. */
  statsd?: string;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses `--statsd host:port` (an IP literal, `[v6]:port`, or a host name). */
export function parseStatsdTarget(s: string): { host: string; port: number } {
  const bad = () =>
    new SipwardenError("USAGE", `--statsd expects host:port, e.g. 127.0.0.1:8125, got ${JSON.stringify(s)}`);
  const ip = splitHostPort(s);
  if (ip) {
    if (ip.port === 0) throw bad();
    return { host: ip.ip, port: ip.port };
  }
  const i = s.lastIndexOf(":");
  if (i <= 0) throw bad();
  const host = s.slice(0, i);
  const portText = s.slice(i + 1);
  if (!/^\d{1,5}$/.test(portText)) throw bad();
  const port = Number(portText);
  // A host with a colon left over is an unbracketed IPv6 address: ambiguous with the port.
  if (port < 1 || port > 65535 || host.includes(":") || (!HOSTNAME.test(host) && !normalizeIp(host))) throw bad();
  return { host, port };
}

/** Applies the flags to a validated config (a copy: the loaded config stays frozen). */
export function applyRunFlags(base: Config, f: RunFlags): Config {
  const c = structuredClone(base) as Config;
  if (f.log?.length) {
    c.sources.files = f.log.map((path) => ({
      path,
      format: f.format,
      fromStart: f.fromStart === true,
      maxLineBytes: 16384,
    }));
  } else if (f.fromStart) {
    for (const s of c.sources.files) s.fromStart = true;
  }
  if (f.ami?.length) c.sources.ami = [...c.sources.ami, ...f.ami.map(parseAmiUrl)];
  if (f.backend) c.enforce.backend = f.backend;
  if (f.stateDir) c.store.stateDir = f.stateDir;
  if (f.socket) c.api.socket = f.socket;
  if (f.logLevel) c.log.level = f.logLevel as Config["log"]["level"];
  if (f.pretty !== undefined) c.log.pretty = f.pretty;
  if (f.statsd) {
    const t = parseStatsdTarget(f.statsd);
    c.metrics.statsd = { host: t.host, port: t.port, prefix: c.metrics.statsd?.prefix ?? "security" };
  }
  return c;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerRunCommand(program: Command): void {
  program
    .command("run")
    .description("run the daemon in the foreground: follow logs, detect attacks, ban in the kernel")
    .option("-c, --config <file>", "config file (optional; drop-ins from <dir>/sipwarden.d/)", DEFAULT_CONFIG_PATH)
    .option("--log <file>", "follow this log file (repeatable; replaces sources.files)", collect)
    .addOption(
      new Option("--format <format>", "format of the --log files")
        .choices(["auto", "asterisk", "kamailio", "freeswitch"])
        .default("auto"),
    )
    .addOption(new Option("--backend <backend>", "firewall backend").choices(["auto", "nftables", "ipset", "dry-run"]))
    .option("--state-dir <dir>", "where the SQLite state lives (default /var/lib/sipwarden)")
    .option("--socket <path>", "control socket (default /run/sipwarden/sipwarden.sock)")
    .option("--from-start", "on the first run, read the log files from their beginning")
    .option(
      "--ami <url>",
      "Asterisk Manager source, ami://user:secret@host:5038 (repeatable; ?secretFile=/path)",
      collect,
    )
    .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error"]))
    .option(
      "--statsd <host:port>",
      "send StatsD counters here (sets metrics.statsd; prefix from the config, default security)",
    )
    .option("--pretty", "human-readable logs (default when stdout is a terminal)")
    .option("--json-logs", "JSON logs even on a terminal")
    .action(async (o) => {
      const flags: RunFlags = {
        config: o.config,
        format: o.format as RunFlags["format"],
        ...(o.log ? { log: o.log } : {}),
        ...(o.backend ? { backend: o.backend as RunFlags["backend"] } : {}),
        ...(o.stateDir ? { stateDir: o.stateDir } : {}),
        ...(o.socket ? { socket: o.socket } : {}),
        ...(o.fromStart ? { fromStart: true } : {}),
        ...(o.ami ? { ami: o.ami } : {}),
        ...(o.logLevel ? { logLevel: o.logLevel } : {}),
        ...(o.statsd ? { statsd: o.statsd } : {}),
        ...(o.pretty ? { pretty: true } : o.jsonLogs ? { pretty: false } : {}),
      };
      // The daemon stack (fastify, SQLite, prom-client, nodemailer…) loads only for `run`:
      // every other command starts without it.
      const [{ configLoader, Daemon }, { createLogger }] = await Promise.all([
        import("../daemon.js"),
        import("../core/logger.js"),
      ]);
      const load = configLoader(o.config, o.config !== DEFAULT_CONFIG_PATH, (c) => applyRunFlags(c, flags));
      const first = load(); // validate before anything starts: a bad config exits 78 here
      const log = createLogger({
        level: first.config.log.level,
        ...(first.config.log.pretty !== undefined ? { pretty: first.config.log.pretty } : {}),
      });
      const daemon = new Daemon({ loadConfig: load, log });
      let stopping = false;
      const stop = (why: string, code: number) => {
        if (stopping) return;
        stopping = true;
        daemon.stop(why).finally(() => {
          log.flush?.();
          process.exit(code);
        });
      };
      process.on("SIGTERM", () => stop("SIGTERM", 0));
      process.on("SIGINT", () => stop("SIGINT", 0));
      process.on("SIGHUP", () => {
        daemon
          .reload()
          .catch((err: Error) => log.error({ err: err.message }, "reload failed; the previous config stays in force"));
      });
      process.on("uncaughtException", (err) => {
        log.fatal({ err }, "uncaught exception");
        stop("crash", 70);
      });
      process.on("unhandledRejection", (err) => {
        log.error({ err }, "unhandled promise rejection (continuing)");
      });
      await daemon.start();
      log.info({ pid: process.pid }, "sipwarden running");
    });
}
