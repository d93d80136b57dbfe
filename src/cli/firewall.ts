/**
 * `sipwarden firewall`: drives the enforcer directly, with no daemon, for scripts and for
 * emergencies when the daemon is down. It uses the config file's `enforce` section and
 * allowlist when there is one. Bans made here are not in the store: the daemon's reconcile
 * at its next start removes them unless the store also holds them.
 */
import { type Command, Option, type OptionValues } from "@commander-js/extra-typings";
import { formatDuration, parseDuration } from "../config/duration.js";
import { DEFAULT_CONFIG_PATH, defaultConfig, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { SipwardenError } from "../core/errors.js";
import { createEnforcer } from "../enforce/select.js";
import type { BanEntry, Enforcer } from "../enforce/types.js";

interface CommonOpts {
  backend?: "auto" | "nftables" | "ipset" | "dry-run";
  table?: string;
  config?: string | boolean;
}

// biome-ignore lint/suspicious/noExplicitAny: mirrors commander's own generic bounds
function withCommon<Args extends any[], Opts extends OptionValues>(cmd: Command<Args, Opts>) {
  return cmd
    .addOption(
      new Option("-b, --backend <backend>", "firewall backend (default: the config's enforce.backend)").choices([
        "auto",
        "nftables",
        "ipset",
        "dry-run",
      ] as const),
    )
    .option("--table <name>", "nft table / ipset stem (default: the config's enforce.table)")
    .option("-c, --config <file>", `config file (default: ${DEFAULT_CONFIG_PATH} when it exists)`)
    .option("--no-config", "ignore the config file: built-in defaults, no allowlist");
}

function configFor(o: CommonOpts): Config {
  if (o.config === false) return defaultConfig();
  if (typeof o.config === "string") return loadConfig(o.config, true).config;
  return loadConfig(DEFAULT_CONFIG_PATH, false).config;
}

/** Builds the enforcer, with its warnings and errors going to stderr. */
function open(o: CommonOpts): Enforcer {
  const config = configFor(o);
  const enforce = { ...config.enforce };
  if (o.backend) enforce.backend = o.backend;
  if (o.table) enforce.table = o.table;
  return createEnforcer({
    config: enforce,
    allowlist: config.policy.allowlist,
    hooks: {
      onWarn: (m) => process.stderr.write(`sipwarden: warning: ${m}\n`),
      onError: (e) => process.stderr.write(`sipwarden: ${e.message}\n`),
      onInfo: (m) => process.stderr.write(`sipwarden: ${m}\n`),
    },
    // One attempt and a short back-off: a person at the terminal wants the error now.
    maxAttempts: 2,
    backoffMs: 200,
  });
}

async function using<T>(e: Enforcer, fn: (e: Enforcer) => Promise<T>): Promise<T> {
  try {
    return await fn(e);
  } finally {
    await e.close();
  }
}

function remaining(b: BanEntry, now: number): string {
  // The kernel lists whole seconds: milliseconds here would only be noise.
  return b.expiresAt === null
    ? "permanent"
    : formatDuration(Math.max(0, Math.round((b.expiresAt - now) / 1000) * 1000));
}

export function registerFirewallCommand(program: Command): void {
  const fw = program
    .command("firewall")
    .description("drive the firewall directly, without the daemon (scripts, emergencies)");

  withCommon(fw.command("ban").description("ban an address or network").argument("<target>", "IP or CIDR"))
    .option("--for <duration>", 'ban length, e.g. "1h" (default: permanent)')
    .action(async (target, o) => {
      let expiresAt: number | null = null;
      if (o.for !== undefined) {
        const ms = parseDuration(o.for);
        if (ms === null || ms <= 0)
          throw new SipwardenError("USAGE", `--for: expected a duration like "1h", got ${JSON.stringify(o.for)}`);
        expiresAt = Date.now() + ms;
      }
      const e = open(o);
      await using(e, async () => {
        await e.start();
        await e.add({ target, expiresAt });
      });
      const len = expiresAt === null ? "permanently" : `for ${o.for}`;
      process.stdout.write(`banned ${target} ${len} (${e.backend})\n`);
    });

  withCommon(fw.command("unban").description("lift a ban").argument("<target>", "IP or CIDR")).action(
    async (target, o) => {
      const e = open(o);
      await using(e, async () => {
        await e.start();
        await e.remove(target);
      });
      process.stdout.write(`unbanned ${target} (${e.backend})\n`);
    },
  );

  withCommon(fw.command("list").description("list what the firewall holds now"))
    .option("--json", "JSON output")
    .action(async (o) => {
      const e = open(o);
      const bans = await using(e, () => e.list());
      const now = Date.now();
      bans.sort((a, b) => a.target.localeCompare(b.target, "en", { numeric: true }));
      if (o.json) {
        const rows = bans.map((b) => ({
          target: b.target,
          expiresAt: b.expiresAt === null ? null : new Date(b.expiresAt).toISOString(),
          remainingSeconds: b.expiresAt === null ? null : Math.max(0, Math.round((b.expiresAt - now) / 1000)),
        }));
        process.stdout.write(`${JSON.stringify({ backend: e.backend, bans: rows }, null, 2)}\n`);
        return;
      }
      if (bans.length === 0) {
        process.stdout.write(`no bans (${e.backend})\n`);
        return;
      }
      const width = Math.max(6, ...bans.map((b) => b.target.length));
      process.stdout.write(`${"TARGET".padEnd(width)}  REMAINING\n`);
      for (const b of bans) process.stdout.write(`${b.target.padEnd(width)}  ${remaining(b, now)}\n`);
    });

  withCommon(fw.command("remove").description("delete sipwarden's table, sets and rules (every ban goes)")).action(
    async (o) => {
      const e = open(o);
      await using(e, async () => {
        await e.destroy?.();
      });
      process.stdout.write(`removed sipwarden's firewall objects (${e.backend})\n`);
    },
  );
}
