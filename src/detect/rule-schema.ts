/**
 * The schema of one detection rule file (`rules/*.yaml`). Strict like the config: an unknown key
 * is an error, and every message names the path, which the YAML loader turns into a line.
 *
 *   id: sip-auth-bruteforce
 *   description: Repeated failed SIP authentication from one address
 *   filter: { kind: [auth_failed], server: [asterisk, kamailio], not: { service: [AMI] } }
 *   type: threshold          # threshold | distinct | instant | density
 *   count: 5                 # threshold/distinct, sliding window: `count` within `window`
 *   window: 10m
 *   ban: 1h
 */
import { z } from "zod";
import { duration } from "../config/schema.js";
import { ATTACK_KINDS, type AttackKind, type ServerKind } from "../core/events.js";

export const RULE_TYPES = ["threshold", "distinct", "instant", "density"] as const;
export type RuleType = (typeof RULE_TYPES)[number];

/** Event fields a rule may group by (besides the address, which is always part of the key). */
export const GROUP_FIELDS = ["ip", "service", "server", "account", "userAgent", "pattern"] as const;
export type GroupField = (typeof GROUP_FIELDS)[number];

/** Event fields `distinct` may count. */
export const DISTINCT_FIELDS = ["account", "userAgent", "service", "pattern", "detail"] as const;
export type DistinctField = (typeof DISTINCT_FIELDS)[number];

const SERVERS = ["asterisk", "kamailio", "freeswitch", "custom"] as const satisfies readonly ServerKind[];

/** Accepts a single string where a list is expected (`kind: auth_failed`). */
function list<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (typeof v === "string" ? [v] : v), z.array(item).min(1));
}

const attackKind = z.string().superRefine((v, ctx) => {
  if (!(ATTACK_KINDS as readonly string[]).includes(v))
    ctx.addIssue({
      code: "custom",
      message: `${JSON.stringify(v)} is not an attack kind (one of ${ATTACK_KINDS.join(", ")}); only attack kinds count`,
    });
});

const filterFields = {
  /** Event kinds (attack kinds only). Default: every attack kind. */
  kind: list(attackKind).optional(),
  server: list(z.enum(SERVERS)).optional(),
  /** Service names, compared case-insensitively (PJSIP, SIP, AMI, IAX2, sofia, pike, …). */
  service: list(z.string().min(1)).optional(),
  /** Pattern ids; a trailing `*` matches a prefix (`asterisk.ami.*`). */
  pattern: list(z.string().min(1)).optional(),
  /** User-Agent substrings, case-insensitive. */
  userAgent: list(z.string().min(1)).optional(),
};

const notFilter = z.strictObject(filterFields);

export const ruleFilterSchema = z.strictObject({
  ...filterFields,
  /** Also match the operator's extra scanner User-Agents (config `rules.scannerAgents`). */
  scannerAgents: z.boolean().optional(),
  /** Events matching this (all of its fields) are left out. */
  not: notFilter.optional(),
});

const PRIMITIVE_KEYS = ["count", "window", "capacity", "leak", "field", "rate", "per"] as const;
const ALLOWED: Record<RuleType, readonly string[]> = {
  threshold: ["count", "window", "capacity", "leak"],
  distinct: ["count", "window", "capacity", "leak", "field"],
  instant: [],
  density: ["rate", "per"],
};

const positiveDuration = duration.refine((ms) => ms > 0, { message: "expected a duration above zero" });

export const ruleSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, "expected an id of lower-case letters, digits, '_', '.' or '-'"),
    description: z.string().min(1),
    type: z.enum(RULE_TYPES),
    filter: ruleFilterSchema.default({}),
    /** Extra key fields; the address is always part of the key. */
    groupBy: list(z.enum(GROUP_FIELDS)).default(["ip"]),
    /** Sliding window: fire at the `count`-th event (distinct: value) within `window`. */
    count: z.number().int().min(1).max(100).optional(),
    window: positiveDuration.optional(),
    /** Leaky bucket (CrowdSec): fire when an event finds `capacity` units; one leaks every `leak`. */
    capacity: z.number().int().min(1).max(10_000).optional(),
    leak: positiveDuration.optional(),
    /** distinct: the field whose different values are counted. */
    field: z.enum(DISTINCT_FIELDS).optional(),
    /** density: fire when more than `rate` events arrive per `per`. */
    rate: z.number().int().min(1).max(1_000_000).optional(),
    per: positiveDuration.optional(),
    ban: positiveDuration,
    /** Alert only: decisions are reported with `simulate: true` and never enforced. */
    simulate: z.boolean().default(false),
    /**
     * Whether a recent successful login from the address suppresses this rule. Default true,
     * except for instant, density, User-Agent and scanner/flood rules, which trust never overrides.
     */
    trust: z.boolean().optional(),
    labels: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  })
  .superRefine((r, ctx) => {
    const given = (k: string) => (r as Record<string, unknown>)[k] !== undefined;
    for (const k of PRIMITIVE_KEYS) {
      if (given(k) && !ALLOWED[r.type].includes(k))
        ctx.addIssue({ code: "custom", path: [k], message: `not allowed for type ${r.type}` });
    }
    if (r.type === "threshold" || r.type === "distinct") {
      const sliding = given("count") || given("window");
      const leaky = given("capacity") || given("leak");
      if (sliding && leaky)
        ctx.addIssue({
          code: "custom",
          path: [given("capacity") ? "capacity" : "leak"],
          message: "give either count + window (sliding window) or capacity + leak (leaky bucket), not both",
        });
      else if (leaky) {
        for (const k of ["capacity", "leak"])
          if (!given(k))
            ctx.addIssue({ code: "custom", path: [k], message: `required with ${k === "leak" ? "capacity" : "leak"}` });
      } else {
        for (const k of ["count", "window"])
          if (!given(k)) ctx.addIssue({ code: "custom", path: [k], message: `required for type ${r.type}` });
      }
    }
    if (r.type === "density") {
      for (const k of ["rate", "per"])
        if (!given(k)) ctx.addIssue({ code: "custom", path: [k], message: "required for type density" });
    }
    if (!r.groupBy.includes("ip"))
      ctx.addIssue({ code: "custom", path: ["groupBy"], message: "must include ip (bans are per address)" });
    if (r.trust === true && trustExempt(r))
      ctx.addIssue({
        code: "custom",
        path: ["trust"],
        message: "trust-after-auth never overrides instant, density, User-Agent or scanner/flood rules",
      });
  });

type RawRule = z.output<typeof ruleSchema>;

/** Rules that a recent successful login must never silence. */
function trustExempt(r: Pick<RawRule, "type" | "filter">): boolean {
  if (r.type === "instant" || r.type === "density") return true;
  if (r.filter.userAgent || r.filter.scannerAgents) return true;
  const kinds = r.filter.kind as AttackKind[] | undefined;
  return kinds?.every((k) => k === "scanner" || k === "flood") ?? false;
}

/** A validated rule, as the engine consumes it. Frozen. */
export interface RuleSpec {
  readonly id: string;
  readonly description: string;
  readonly type: RuleType;
  readonly filter: RuleFilterSpec;
  readonly groupBy: readonly GroupField[];
  readonly count?: number;
  /** ms */
  readonly window?: number;
  readonly capacity?: number;
  /** ms */
  readonly leak?: number;
  readonly field?: DistinctField;
  readonly rate?: number;
  /** ms */
  readonly per?: number;
  /** Base ban length in ms, before escalation. */
  readonly ban: number;
  readonly simulate: boolean;
  /** Effective: whether trust-after-auth may suppress this rule's decisions. */
  readonly trust: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** The file the rule came from, when loaded from disk. */
  readonly file?: string;
}

/** The filter part of a rule: every given field must match (lists match any of their items). */
export interface RuleFilterSpec {
  readonly kind?: readonly AttackKind[];
  readonly server?: readonly ServerKind[];
  readonly service?: readonly string[];
  readonly pattern?: readonly string[];
  readonly userAgent?: readonly string[];
  readonly scannerAgents?: boolean;
  readonly not?: Omit<RuleFilterSpec, "not" | "scannerAgents">;
}

export function toRuleSpec(r: RawRule, file?: string): RuleSpec {
  const spec: RuleSpec = {
    ...(r as Omit<RawRule, "trust" | "filter">),
    filter: r.filter as RuleFilterSpec,
    trust: r.trust ?? !trustExempt(r),
    ...(r.type === "distinct" && r.field === undefined ? { field: "account" as const } : {}),
    ...(file ? { file } : {}),
  };
  return spec;
}
