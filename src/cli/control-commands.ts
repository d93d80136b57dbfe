/**
 * CLI commands that talk to a running daemon through its control API:
 * status, bans, ban, unban, reload, events.
 */
import type { Command } from "@commander-js/extra-typings";
import { apiCall, type ClientOptions, followEvents } from "../api/client.js";
import type { BanInfo, StatusInfo } from "../api/types.js";
import { parseDuration } from "../config/duration.js";
import { DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";
import { normalizeCidr } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import type { EventRecord } from "../core/events.js";

interface ConnOpts {
  socket?: string;
  url?: string;
  token?: string;
  config?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: extra-typings' generics differ per command; only .option() is used
function withConn<T extends Command<any, any, any>>(cmd: T): T {
  cmd
    .option("--socket <path>", "daemon control socket (default: api.socket from the config)")
    .option("--url <url>", "daemon control API over TCP, e.g. http://127.0.0.1:9090")
    .option("--token <token>", "bearer token for --url (or SIPWARDEN_TOKEN)")
    .option("-c, --config <file>", "config file to take the socket path from", DEFAULT_CONFIG_PATH);
  return cmd;
}

/** Connection options; commander types them per command, so they arrive untyped here. */
export function clientOptions(opts: object): ClientOptions {
  const o = opts as ConnOpts;
  if (o.url)
    return {
      url: o.url,
      ...(o.token || process.env.SIPWARDEN_TOKEN ? { token: o.token ?? process.env.SIPWARDEN_TOKEN } : {}),
    };
  if (o.socket) return { socket: o.socket };
  const cfg = loadConfig(o.config ?? DEFAULT_CONFIG_PATH).config;
  return { socket: cfg.api.socket };
}

const out = (s: string) => process.stdout.write(s + "\n");

function ago(iso: string, now = Date.now()): string {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function until(iso: string | null, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
  if (s < 120) return `in ${s}s`;
  if (s < 7200) return `in ${Math.round(s / 60)}m`;
  return `in ${(s / 3600).toFixed(1)}h`;
}

export function formatStatus(s: StatusInfo): string {
  const lines = [
    `sipwarden ${s.version}, pid ${s.pid}, up ${Math.round(s.uptimeSeconds)} s (since ${s.startedAt})`,
    `backend: ${s.backend}${s.dryRun ? " (DRY RUN: nothing is blocked)" : ""}`,
    `active bans: ${s.activeBans}   events/min: ${s.eventsPerMinute}   events total: ${s.eventsTotal}   hostile: ${s.hostileTotal}   suppressed: ${s.suppressedTotal}`,
    "sources:",
    ...(s.sources.length
      ? s.sources.map(
          (x) =>
            `  ${x.id}  ${x.state}  restarts ${x.restarts}${x.lagMs !== undefined ? `  lag ${x.lagMs} ms` : ""}${x.lastError ? `  last error: ${x.lastError}` : ""}${x.detail ? `  ${x.detail}` : ""}`,
        )
      : ["  (none: pass --log FILE or configure sources in the config)"]),
    `rules (${s.rules.length}):`,
    ...s.rules.map((r) => `  ${r.id}${r.simulate ? " [simulate]" : ""}  ${r.description}`),
  ];
  return lines.join("\n");
}

export function formatBans(bans: BanInfo[]): string {
  if (bans.length === 0) return "no active bans";
  const w = Math.max(...bans.map((b) => b.ip.length), 2);
  const rw = Math.max(...bans.map((b) => b.rule.length), 4);
  return [
    `${"IP".padEnd(w)}  ${"RULE".padEnd(rw)}  SINCE      EXPIRES     REASON`,
    ...bans.map(
      (b) =>
        `${b.ip.padEnd(w)}  ${b.rule.padEnd(rw)}  ${ago(b.since).padEnd(9)}  ${until(b.expires).padEnd(10)}  ${b.reason}`,
    ),
  ].join("\n");
}

export function registerControlCommands(program: Command): void {
  withConn(
    program.command("status").description("show the running daemon's state").option("--json", "JSON output"),
  ).action(async (o) => {
    const s = await apiCall<StatusInfo>("GET", "/v1/status", undefined, clientOptions(o));
    out(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
  });

  withConn(program.command("bans").description("list active bans").option("--json", "JSON output")).action(
    async (o) => {
      const bans = await apiCall<BanInfo[]>("GET", "/v1/bans", undefined, clientOptions(o));
      out(o.json ? JSON.stringify(bans, null, 2) : formatBans(bans));
    },
  );

  withConn(
    program
      .command("ban")
      .description("ban an address or network now (stored; survives a restart)")
      .argument("<ip|cidr>")
      .option("--for <duration>", "ban length, e.g. 1h, 7d; 0 = permanent")
      .option("--reason <text>", "why (shown in `sipwarden bans`)"),
  ).action(async (target, o) => {
    if (!normalizeCidr(target)) throw new SipwardenError("USAGE", `not an IP address or CIDR: ${target}`);
    if (o.for !== undefined && parseDuration(o.for) === null)
      throw new SipwardenError("USAGE", `--for: expected a duration like "1h", got ${JSON.stringify(o.for)}`);
    const b = await apiCall<BanInfo>(
      "POST",
      "/v1/bans",
      { target, ...(o.for !== undefined ? { for: o.for } : {}), ...(o.reason ? { reason: o.reason } : {}) },
      clientOptions(o),
    );
    out(`banned ${b.ip} (expires ${b.expires ?? "never"})`);
  });

  withConn(
    program
      .command("unban")
      .description("lift a ban (or every ban with --all)")
      .argument("[ip|cidr]")
      .option("--all", "lift every active ban"),
  ).action(async (target, o) => {
    if (!o.all && !target) throw new SipwardenError("USAGE", "give an address, or --all");
    if (o.all && target) throw new SipwardenError("USAGE", "give an address or --all, not both");
    const t = o.all ? "all" : target!;
    if (t !== "all" && !normalizeCidr(t)) throw new SipwardenError("USAGE", `not an IP address or CIDR: ${t}`);
    const r = await apiCall<{ removed: number }>(
      "DELETE",
      `/v1/bans/${encodeURIComponent(t)}`,
      undefined,
      clientOptions(o),
    );
    out(`unbanned ${r.removed} ban${r.removed === 1 ? "" : "s"}`);
  });

  withConn(program.command("reload").description("reload config and rules without losing state (like SIGHUP)")).action(
    async (o) => {
      const r = await apiCall<{ rules: number; files: string[] }>("POST", "/v1/reload", undefined, clientOptions(o));
      out(`reloaded: ${r.rules} rules from ${r.files.length ? r.files.join(", ") : "embedded defaults"}`);
    },
  );

  withConn(
    program
      .command("events")
      .description("show recent events, or follow them live")
      .option("--follow", "stream new events as they happen")
      .option("-n, --limit <n>", "how many recent events", "20")
      .option("--json", "one JSON object per line"),
  ).action(async (o) => {
    const conn = clientOptions(o);
    const show = (e: EventRecord) =>
      out(
        o.json
          ? JSON.stringify(e)
          : `${e.time}  ${(e.ip ?? "-").padEnd(15)}  ${e.kind.padEnd(15)}  ${e.service}  ${e.account ?? ""}  ${e.pattern}`,
      );
    if (!o.follow) {
      const evs = await apiCall<EventRecord[]>("GET", `/v1/events?limit=${Number(o.limit) || 20}`, undefined, conn);
      for (const e of evs) show(e);
      return;
    }
    const ac = new AbortController();
    process.once("SIGINT", () => ac.abort());
    await followEvents(conn, (e) => show(e as EventRecord), ac.signal);
  });
}
