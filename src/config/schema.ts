/**
 * The one config schema: it is the validator and, through z.output, the static type.
 * Objects are strict (an unknown key is an error). Durations are strings such as "10m"
 * and come out as milliseconds.
 */
import { z } from "zod";
import { normalizeCidr } from "../core/address.js";
import { EVENT_KINDS } from "../core/events.js";
import { parseDuration } from "./duration.js";

/** A bare number is refused: is `2` two seconds or two milliseconds? Say `2s` or `2ms`. */
export const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === "number" ? null : parseDuration(v);
  if (ms === null || !Number.isFinite(ms) || ms < 0) {
    ctx.addIssue({
      code: "custom",
      message:
        typeof v === "number"
          ? `expected a duration with a unit like "10m" or "500ms", got the bare number ${v}`
          : 'expected a duration like "10m"',
    });
    return z.NEVER;
  }
  return ms;
});

export const cidr = z.string().transform((v, ctx) => {
  const n = normalizeCidr(v.trim());
  if (!n) {
    ctx.addIssue({ code: "custom", message: `expected an IP address or CIDR, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n.text;
});

export const logFormat = z.enum(["auto", "asterisk", "kamailio", "freeswitch"]);
export const eventKind = z.enum(EVENT_KINDS as [string, ...string[]]);

const fileSource = z.strictObject({
  /** A path or a glob. */
  path: z.string().min(1),
  format: logFormat.default("auto"),
  /** On the first run, read the whole file instead of starting at its end. */
  fromStart: z.boolean().default(false),
  maxLineBytes: z.number().int().min(256).default(16384),
});

const journaldSource = z.strictObject({
  unit: z.string().min(1).optional(),
  identifier: z.string().min(1).optional(),
  format: logFormat.default("auto"),
});

const amiSource = z.strictObject({
  name: z.string().optional(),
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(5038),
  username: z.string().min(1),
  secret: z.string().optional(),
  secretFile: z.string().optional(),
  auth: z.enum(["md5", "plain"]).default("md5"),
  pingInterval: duration.default(20_000),
  /** Warn when no security event has arrived for this long after login (missing `read = security`). */
  silenceWarning: duration.default(600_000),
});

const customPattern = z.strictObject({
  id: z.string().regex(/^[a-z0-9_.-]+$/i, "expected an id of letters, digits, '_', '.' or '-'"),
  regex: z.string().min(1),
  kind: eventKind,
  service: z.string().default("custom"),
  /** Only try this pattern on lines that contain this literal (speed). */
  needle: z.string().optional(),
});

const email = z.strictObject({
  host: z.string(),
  port: z.number().int().default(25),
  secure: z.boolean().default(false),
  user: z.string().optional(),
  password: z.string().optional(),
  from: z.string(),
  to: z.array(z.string()).min(1),
  /** Collect bans for this long before sending one mail. */
  batch: duration.default(60_000),
  /** At most this many mails per hour; the rest is folded into the next digest. */
  maxPerHour: z.number().int().min(1).default(12),
  digest: duration.optional(),
  onStartStop: z.boolean().default(true),
});

const webhook = z.strictObject({
  url: z.string().url(),
  format: z.enum(["json", "slack"]).default("json"),
  headers: z.record(z.string(), z.string()).default({}),
  retries: z.number().int().min(0).max(20).default(5),
  timeout: duration.default(5000),
  batch: duration.default(1000),
});

export const configSchema = z.strictObject({
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
      pretty: z.boolean().optional(),
    })
    .default({ level: "info" }),
  time: z
    .strictObject({
      /** IANA zone for log timestamps that carry none; default: the host's zone. */
      zone: z.string().optional(),
    })
    .default({}),
  sources: z
    .strictObject({
      files: z.array(fileSource).default([]),
      journald: z.array(journaldSource).default([]),
      ami: z.array(amiSource).default([]),
    })
    .default({ files: [], journald: [], ami: [] }),
  parsers: z
    .strictObject({
      custom: z.array(customPattern).default([]),
    })
    .default({ custom: [] }),
  rules: z
    .strictObject({
      /** Directories of rule YAML files; the shipped `rules/` when empty. */
      dirs: z.array(z.string()).default([]),
      disable: z.array(z.string()).default([]),
      /** Extra scanner User-Agent substrings (case-insensitive). */
      scannerAgents: z.array(z.string()).default([]),
    })
    .default({ dirs: [], disable: [], scannerAgents: [] }),
  policy: z
    .strictObject({
      allowlist: z.array(cidr).default([]),
      /** User-Agents that a scanner rule must never match (a site's own tooling). */
      allowAgents: z.array(z.string()).default([]),
      /** An address that authenticated within this window is not banned by brute-force rules. 0 disables. */
      trustAfterAuth: duration.default(600_000),
      ipv6Prefix: z.number().int().min(32).max(128).default(64),
      escalation: z
        .strictObject({
          factor: z.number().min(1).default(2),
          max: duration.default(7 * 86_400_000),
          jitter: z.number().min(0).max(0.5).default(0),
        })
        .default({ factor: 2, max: 7 * 86_400_000, jitter: 0 }),
      maxTrackedKeys: z.number().int().min(1000).default(200_000),
      dedupWindow: duration.default(2000),
    })
    .default({
      allowlist: [],
      allowAgents: [],
      trustAfterAuth: 600_000,
      ipv6Prefix: 64,
      escalation: { factor: 2, max: 7 * 86_400_000, jitter: 0 },
      maxTrackedKeys: 200_000,
      dedupWindow: 2000,
    }),
  enforce: z
    .strictObject({
      backend: z.enum(["auto", "nftables", "ipset", "dry-run"]).default("auto"),
      action: z.enum(["drop", "reject"]).default("drop"),
      /** Limit the block to these ports (all ports when empty). */
      ports: z.array(z.number().int().min(1).max(65535)).default([]),
      protocols: z.array(z.enum(["udp", "tcp"])).default(["udp", "tcp"]),
      batchWindow: duration.default(2),
      conntrackFlush: z.boolean().default(true),
      table: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,30}$/)
        .default("sipwarden"),
    })
    .default({
      backend: "auto",
      action: "drop",
      ports: [],
      protocols: ["udp", "tcp"],
      batchWindow: 2,
      conntrackFlush: true,
      table: "sipwarden",
    }),
  store: z
    .strictObject({
      stateDir: z.string().default("/var/lib/sipwarden"),
      recentEvents: z.number().int().min(0).default(10_000),
    })
    .default({ stateDir: "/var/lib/sipwarden", recentEvents: 10_000 }),
  api: z
    .strictObject({
      socket: z.string().default("/run/sipwarden/sipwarden.sock"),
      tcp: z
        .strictObject({
          host: z.string().default("127.0.0.1"),
          port: z.number().int().min(0).max(65535),
          token: z.string().optional(),
        })
        .optional(),
    })
    .default({ socket: "/run/sipwarden/sipwarden.sock" }),
  notify: z
    .strictObject({
      email: email.optional(),
      webhooks: z.array(webhook).default([]),
    })
    .default({ webhooks: [] }),
  metrics: z
    .strictObject({
      statsd: z
        .strictObject({
          host: z.string().default("127.0.0.1"),
          port: z.number().int().min(1).max(65535).default(8125),
          prefix: z.string().default("security"),
        })
        .optional(),
      prometheus: z.boolean().default(true),
    })
    .default({ prometheus: true }),
});

export type Config = z.output<typeof configSchema>;
export type FileSourceConfig = z.output<typeof fileSource>;
export type AmiSourceConfig = z.output<typeof amiSource>;
export type CustomPatternConfig = z.output<typeof customPattern>;
export type EmailConfig = z.output<typeof email>;
export type WebhookConfig = z.output<typeof webhook>;
