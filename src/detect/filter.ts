/**
 * Compiles a rule's filter into a predicate over attack events. The kind test is not here: the
 * engine indexes rules by kind, so a rule is only asked about events of its kinds.
 */
import type { AttackEvent } from "../core/events.js";
import type { RuleFilterSpec } from "./rule-schema.js";

/** Result of a filter test. `agentAllowed`: it would have matched, but the UA is allowlisted. */
export const MATCH = 1;
export const NO_MATCH = 0;
export const AGENT_ALLOWED = 2;
export type MatchResult = typeof MATCH | typeof NO_MATCH | typeof AGENT_ALLOWED;

const lowerCache = new Map<string, string>();

/** Lower-case with a small cache: services and User-Agents repeat a lot. */
function lower(s: string): string {
  let l = lowerCache.get(s);
  if (l === undefined) {
    if (lowerCache.size >= 4096) lowerCache.clear();
    l = s.toLowerCase();
    lowerCache.set(s, l);
  }
  return l;
}

type Pred = (e: AttackEvent) => boolean;

function anySubstring(needles: readonly string[]): (ua: string) => boolean {
  const ls = needles.map((n) => n.toLowerCase());
  return (ua) => {
    const l = lower(ua);
    for (const n of ls) if (l.includes(n)) return true;
    return false;
  };
}

function fieldPreds(f: Omit<RuleFilterSpec, "not" | "scannerAgents">, extraAgents: readonly string[]): Pred[] {
  const preds: Pred[] = [];
  if (f.server) {
    const servers = new Set<string>(f.server);
    preds.push((e) => servers.has(e.server));
  }
  if (f.service) {
    const services = new Set(f.service.map((s) => s.toLowerCase()));
    preds.push((e) => services.has(lower(e.service)));
  }
  if (f.pattern) {
    const exact = new Set(f.pattern.filter((p) => !p.endsWith("*")));
    const prefixes = f.pattern.filter((p) => p.endsWith("*")).map((p) => p.slice(0, -1));
    preds.push((e) => exact.has(e.pattern) || prefixes.some((p) => e.pattern.startsWith(p)));
  }
  const agents = [...(f.userAgent ?? []), ...extraAgents];
  if (agents.length > 0) {
    const m = anySubstring(agents);
    preds.push((e) => e.userAgent !== undefined && e.userAgent !== "" && m(e.userAgent));
  }
  return preds;
}

export interface FilterContext {
  /** Config `rules.scannerAgents`, for filters with `scannerAgents: true`. */
  scannerAgents: readonly string[];
  /** Config `policy.allowAgents`: User-Agents that a UA or scanner rule never matches. */
  allowAgents: readonly string[];
}

/** Builds the predicate. `agentRule`: the filter involves User-Agents or scanner events. */
export function compileFilter(f: RuleFilterSpec, ctx: FilterContext): (e: AttackEvent) => MatchResult {
  const preds = fieldPreds(f, f.scannerAgents ? ctx.scannerAgents : []);
  if (f.scannerAgents && !f.userAgent && ctx.scannerAgents.length === 0) preds.push(() => false);
  let not: Pred[] | null = null;
  if (f.not) {
    not = fieldPreds(f.not, []);
    if (f.not.kind) {
      const kinds = new Set<string>(f.not.kind);
      not.push((e) => kinds.has(e.kind));
    }
  }
  const agentRule = f.userAgent !== undefined || f.scannerAgents === true || (f.kind?.includes("scanner") ?? false);
  const allowed = agentRule && ctx.allowAgents.length > 0 ? anySubstring(ctx.allowAgents) : null;
  return (e) => {
    for (const p of preds) if (!p(e)) return NO_MATCH;
    if (not && not.length > 0) {
      let all = true;
      for (const p of not)
        if (!p(e)) {
          all = false;
          break;
        }
      if (all) return NO_MATCH;
    }
    if (allowed && e.userAgent && allowed(e.userAgent)) return AGENT_ALLOWED;
    return MATCH;
  };
}
