/** Hand-made SecurityEvents for detector tests. */
import type { AttackKind, SecurityEvent, ServerKind } from "../../src/core/events.js";
import type { RuleSpec } from "../../src/detect/rule-schema.js";
import { parseRule } from "../../src/detect/rules.js";

export const T0 = Date.parse("2024-05-14T10:00:00Z");
export const SEC = 1000;
export const MIN = 60_000;
export const HOUR = 3_600_000;

export interface EventOpts {
  time?: number;
  server?: ServerKind;
  service?: string;
  pattern?: string;
  account?: string;
  userAgent?: string;
  sessionId?: string;
  detail?: string;
}

export function attack(kind: AttackKind, ip: string, o: EventOpts = {}): SecurityEvent {
  const e: Record<string, unknown> = {
    kind,
    time: o.time ?? T0,
    server: o.server ?? "asterisk",
    service: o.service ?? "PJSIP",
    pattern: o.pattern ?? `test.${kind}`,
    line: `test ${kind} ${ip}`,
    remote: { address: ip },
  };
  for (const k of ["account", "userAgent", "sessionId", "detail"] as const) if (o[k] !== undefined) e[k] = o[k];
  return e as unknown as SecurityEvent;
}

export function info(kind: "auth_ok" | "challenge_sent" | "flood_end", ip: string, o: EventOpts = {}): SecurityEvent {
  return { ...(attack("auth_failed", ip, o) as object), kind, pattern: `test.${kind}` } as unknown as SecurityEvent;
}

export function hostile(candidates: string[], o: EventOpts = {}): SecurityEvent {
  return {
    kind: "hostile",
    time: o.time ?? T0,
    server: o.server ?? "asterisk",
    service: o.service ?? "PJSIP",
    pattern: "test.hostile",
    line: "hostile",
    candidates,
  };
}

/** A rule from inline YAML (one rule, validated exactly like a file). */
export function rule(yaml: string): RuleSpec {
  return parseRule(yaml, "<test>");
}

export const BF = rule(`
id: bf
description: brute force
filter: { kind: [auth_failed] }
type: threshold
count: 5
window: 10m
ban: 1h
`);
