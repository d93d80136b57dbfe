/**
 * Replay: run events through a fresh engine and summarise the bans, for `sipwarden test` and
 * the rule fixtures. The engine takes time from the events, so this is exactly what a live run
 * over the same events would have decided.
 */
import type { SecurityEvent } from "../core/events.js";
import { DetectionEngine, type EngineOptions } from "./engine.js";
import type { RuleSpec } from "./rule-schema.js";
import type { Decision, EngineStats } from "./types.js";

/** One ban in `sipwarden test` output (`bans: [...]` in `--json`). */
export interface BanSummary {
  /** The ban target: an address, or an IPv6 network such as `2001:db8::/64`. */
  ip: string;
  rule: string;
  count: number;
  /** ISO 8601 time of the earliest counted event. */
  first: string;
  /** ISO 8601 time of the triggering event. */
  last: string;
  /** Ban length in seconds (after escalation). */
  duration: number;
  /** Present (true) when the rule is alert-only: reported, never enforced. */
  simulate?: true;
}

export function summarize(d: Decision): BanSummary {
  const s: BanSummary = {
    ip: d.target,
    rule: d.rule,
    count: d.count,
    first: new Date(d.first).toISOString(),
    last: new Date(d.last).toISOString(),
    duration: d.duration / 1000,
  };
  if (d.simulate) s.simulate = true;
  return s;
}

/** Incremental replay, for callers that receive events one at a time (bulk readers). */
export class Replayer {
  readonly engine: DetectionEngine;
  readonly decisions: Decision[] = [];
  readonly suppressed: Decision[] = [];

  constructor(rules: readonly RuleSpec[], opts: EngineOptions = {}) {
    this.engine = new DetectionEngine(rules, {
      // Replay is deterministic by default; a seed only matters for distinct-value hashing.
      seed: 0x5eed,
      ...opts,
      onSuppressed: (d) => {
        if (this.suppressed.length < 10_000) this.suppressed.push(d);
        opts.onSuppressed?.(d);
      },
    });
  }

  push(e: SecurityEvent): void {
    const ds = this.engine.observe(e);
    for (let i = 0; i < ds.length; i++) this.decisions.push(ds[i]!);
  }

  bans(): BanSummary[] {
    return this.decisions.map(summarize);
  }

  stats(): EngineStats {
    return this.engine.stats();
  }
}

/** Runs every event through a fresh engine and returns the bans it would issue, in order. */
export function replay(
  events: Iterable<SecurityEvent>,
  rules: readonly RuleSpec[],
  opts: EngineOptions = {},
): BanSummary[] {
  const r = new Replayer(rules, opts);
  for (const e of events) r.push(e);
  return r.bans();
}
