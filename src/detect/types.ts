/**
 * What detection hands to the rest of the pipeline.
 */
import type { SecurityEvent } from "../core/events.js";
import type { Suppression } from "./policy.js";

/**
 * A rule fired. `observe()` returns the decisions to act on; decisions that the policy
 * suppressed (the host itself, the allowlist, a trusted address) carry `suppressed`, go only to
 * the engine's `onSuppressed` callback and its counters, and must never be enforced.
 */
export interface Decision {
  /** What to ban: an IP address, or a network such as `2001:db8:1:2::/64`. */
  readonly target: string;
  /** The address the evidence came from. */
  readonly ip: string;
  /** Rule id. */
  readonly rule: string;
  readonly description: string;
  /** Events (distinct values for `distinct` rules) behind the decision; 1 for `instant`. */
  readonly count: number;
  /** Epoch ms of the earliest counted event. */
  readonly first: number;
  /** Epoch ms of the triggering event; the ban starts here. */
  readonly last: number;
  /** Ban length in ms after escalation and jitter. */
  readonly duration: number;
  /** Alert only: report it, do not enforce it. */
  readonly simulate: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly suppressed?: Suppression;
  /** The event that triggered the decision. */
  readonly event: SecurityEvent;
}

/** Counters for metrics and `sipwarden status`. */
export interface EngineStats {
  /** Every event observed. */
  events: number;
  /** Attack events (those that may count). */
  attacks: number;
  /** Hostile records: counted, never banned on. */
  hostile: number;
  /** Successful logins seen (they feed trust-after-auth). */
  authOk: number;
  /** Attack events dropped because their time is not a finite number. */
  invalid: number;
  /** Reports recognised as a second report of an attempt already counted. */
  duplicates: number;
  /** Decisions returned (simulated ones included). */
  decisions: number;
  simulated: number;
  suppressed: Record<Suppression, number>;
  /** Events a UA or scanner rule would have matched, but the UA is in `policy.allowAgents`. */
  agentAllowed: number;
  /** Keys pushed out of a full table (see `policy.maxTrackedKeys`). */
  evictions: number;
  /** Keys currently tracked, over all rules. */
  trackedKeys: number;
}
