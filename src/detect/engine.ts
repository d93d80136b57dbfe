/**
 * The detector: `observe(event) → decisions`, synchronous, with time taken only from the events,
 * so replaying a log gives exactly the decisions the live run gave. Memory is bounded by
 * `policy.maxTrackedKeys` per table (one table per counting rule, plus de-duplication and active
 * bans), whatever the number of distinct source addresses.
 */
import { randomInt } from "node:crypto";
import { ATTACK_KINDS, type AttackEvent, isAttack, type SecurityEvent } from "../core/events.js";
import { keyHash } from "../core/strings.js";
import { ClockTable } from "./clock-table.js";
import { Dedup } from "./dedup.js";
import { AGENT_ALLOWED, compileFilter, MATCH, type MatchResult } from "./filter.js";
import type { BanHistory } from "./history.js";
import { BanPolicy, type PolicyOptions, type Suppression } from "./policy.js";
import type { DistinctField, GroupField, RuleSpec } from "./rule-schema.js";
import type { Decision, EngineStats } from "./types.js";
import { type Counter, DensityCounter, LeakyCounter, SlidingCounter } from "./window.js";
import { DistinctCounter, DistinctLeakyCounter } from "./window-distinct.js";

export interface EngineOptions {
  /** The config's `policy` section (defaults apply to what is left out). */
  policy?: Partial<PolicyOptions>;
  /** The host's own addresses (see `hostAddresses()` in core/host-addresses.ts); loopback is always included. */
  hostAddresses?: readonly string[];
  /** Offence history for escalation (the store in the daemon); in-memory by default. */
  history?: BanHistory;
  /** Config `rules.scannerAgents`: extra User-Agent substrings for rules with `scannerAgents: true`. */
  scannerAgents?: readonly string[];
  /** Receives every decision the policy suppressed (never to be enforced). */
  onSuppressed?: (d: Decision) => void;
  /** Seed for hashing distinct values; random by default (see hash53). */
  seed?: number;
}

interface CompiledRule {
  readonly idx: number;
  readonly spec: RuleSpec;
  readonly match: (e: AttackEvent) => MatchResult;
  readonly counter: Counter | null;
  /** Group fields besides the address, or null for the plain per-address key. */
  readonly extra: readonly Exclude<GroupField, "ip">[] | null;
  readonly field: DistinctField | null;
}

const NONE: readonly Decision[] = Object.freeze([]);

/**
 * Filter results for one (kind, server, service, pattern) without a User-Agent: every filter
 * field but the User-Agent is one of those four, so the results are fixed for them. Parsers
 * emit a few dozen such combinations, so each event pays one small lookup instead of running
 * every filter of its kind.
 */
interface MatchEntry {
  readonly kind: string;
  readonly server: string;
  readonly service: string;
  /** MatchResult per rule of the kind's list, in list order. */
  readonly results: Uint8Array;
}
/** Bounds on the cache (patterns, and entries per pattern); past them filters just run. */
const MATCH_CACHE_PATTERNS = 1024;
const MATCH_CACHE_PER_PATTERN = 16;
/** Attacker-controlled key parts are cut to this length. */
const MAX_PART = 64;
/** Addresses in the target cache before it is cleared (bounded memory under a spoofed flood). */
const TARGET_CACHE_MAX = 65_536;

/** Bans this engine issued and that are still running, per target and rule. */
class ActiveBans extends ClockTable {
  private until: Float64Array;

  constructor(
    maxKeys: number,
    private readonly n: number,
  ) {
    super(maxKeys);
    this.until = new Float64Array(this.expires.length * n);
  }

  protected grow(cap: number): void {
    const u = new Float64Array(cap * this.n);
    u.set(this.until);
    this.until = u;
  }

  protected clear(s: number): void {
    this.until.fill(Number.NEGATIVE_INFINITY, s * this.n, (s + 1) * this.n);
  }

  untilOf(slot: number, rule: number): number {
    return this.until[slot * this.n + rule]!;
  }

  set(target: string, rule: number, until: number, now: number): void {
    const s = this.slotFor(target, now);
    this.until[s * this.n + rule] = until;
    if (this.fresh || until > this.expires[s]!) this.expires[s] = until;
  }
}

function makeCounter(r: RuleSpec, maxKeys: number, seed: number): Counter | null {
  switch (r.type) {
    case "instant":
      return null;
    case "density":
      return new DensityCounter(r.rate!, r.per!, maxKeys);
    case "threshold":
      return r.capacity !== undefined
        ? new LeakyCounter(r.capacity, r.leak!, maxKeys)
        : new SlidingCounter(r.count!, r.window!, maxKeys);
    case "distinct":
      return r.capacity !== undefined
        ? new DistinctLeakyCounter(r.capacity, r.leak!, maxKeys, seed)
        : new DistinctCounter(r.count!, r.window!, maxKeys, seed);
  }
}

function cut(s: string | undefined): string {
  if (s === undefined) return "";
  return s.length > MAX_PART ? s.slice(0, MAX_PART) : s;
}

export class DetectionEngine {
  readonly rules: readonly RuleSpec[];
  readonly policy: BanPolicy;
  private readonly compiled: CompiledRule[];
  private readonly byKind: Record<string, CompiledRule[]> = Object.create(null);
  private readonly dedup: Dedup;
  private readonly bans: ActiveBans;
  private readonly matchCache = new Map<string, MatchEntry[]>();
  /**
   * Per source address: what it counts as (the address or its IPv6 prefix) and that key's
   * table hash, so that each event costs one lookup instead of a prefix check and a hash.
   */
  private readonly targets = new Map<string, { readonly target: string; readonly hash: number }>();
  private readonly onSuppressed: ((d: Decision) => void) | undefined;
  private readonly st = {
    events: 0,
    attacks: 0,
    hostile: 0,
    authOk: 0,
    invalid: 0,
    decisions: 0,
    simulated: 0,
    agentAllowed: 0,
    suppressed: { allowlist: 0, trusted: 0, self: 0 } as Record<Suppression, number>,
  };

  constructor(rules: readonly RuleSpec[], opts: EngineOptions = {}) {
    this.rules = rules;
    this.policy = new BanPolicy(opts.policy, opts.hostAddresses, opts.history);
    this.onSuppressed = opts.onSuppressed;
    const po = this.policy.options;
    const seed = opts.seed ?? randomInt(0, 2 ** 31);
    const ctx = { scannerAgents: opts.scannerAgents ?? [], allowAgents: po.allowAgents };
    this.compiled = rules.map((spec, idx) => {
      const extra = spec.groupBy.filter((g): g is Exclude<GroupField, "ip"> => g !== "ip");
      return {
        idx,
        spec,
        match: compileFilter(spec.filter, ctx),
        counter: makeCounter(spec, po.maxTrackedKeys, seed),
        extra: extra.length > 0 ? extra : null,
        field: spec.type === "distinct" ? (spec.field ?? "account") : null,
      };
    });
    for (const kind of ATTACK_KINDS) {
      this.byKind[kind] = this.compiled.filter((c) => !c.spec.filter.kind || c.spec.filter.kind.includes(kind));
    }
    this.dedup = new Dedup(po.dedupWindow, po.maxTrackedKeys, rules.length, seed);
    this.bans = new ActiveBans(po.maxTrackedKeys, Math.max(1, rules.length));
  }

  /** Feeds one event; returns the decisions it triggered (often none). Never throws on input. */
  observe(e: SecurityEvent): readonly Decision[] {
    const st = this.st;
    st.events++;
    if (e.kind === "hostile") {
      st.hostile++;
      return NONE;
    }
    if (e.kind === "auth_ok") {
      st.authOk++;
      if (Number.isFinite(e.time)) this.policy.authenticated(this.policy.targetOf(e.remote.address), e.time);
      return NONE;
    }
    if (!isAttack(e)) return NONE;
    // A time that is not a number would defeat every window comparison.
    if (!Number.isFinite(e.time)) {
      st.invalid++;
      return NONE;
    }
    st.attacks++;
    const list = this.byKind[e.kind];
    if (list === undefined || list.length === 0) return NONE;
    const cached = e.userAgent === undefined || e.userAgent === "" ? this.cachedMatches(e, list) : null;
    const ip = e.remote.address;
    let tk = this.targets.get(ip);
    if (tk === undefined) {
      const target = this.policy.targetOf(ip);
      tk = { target, hash: keyHash(target) };
      if (this.targets.size >= TARGET_CACHE_MAX) this.targets.clear();
      this.targets.set(ip, tk);
    }
    const target = tk.target;
    const th = tk.hash;
    const t = e.time;
    let attempt = -2;
    let banSlot = -2;
    let out: Decision[] | null = null;
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      const m = cached !== null ? (cached[i] as MatchResult) : r.match(e);
      if (m !== MATCH) {
        if (m === AGENT_ALLOWED) st.agentAllowed++;
        continue;
      }
      if (banSlot === -2) banSlot = this.bans.peek(target, t, th);
      if (banSlot >= 0 && this.bans.untilOf(banSlot, r.idx) > t) continue;
      let count = 1;
      let first = t;
      const c = r.counter;
      if (c !== null) {
        if (attempt === -2) attempt = this.dedup.attempt(e, ip === target ? th : undefined);
        if (!this.dedup.claim(attempt, r.idx)) continue;
        let key = target;
        let kh: number | undefined = th;
        if (r.extra !== null) {
          for (const f of r.extra) key += "\u0001" + cut(e[f]);
          kh = undefined;
        }
        if (!c.add(key, t, r.field === null ? undefined : e[r.field], kh)) continue;
        count = c.count;
        first = c.first;
      }
      const d = this.decide(r, e, ip, target, count, first);
      if (d !== null) {
        if (out === null) out = [d];
        else out.push(d);
        banSlot = -2;
      }
    }
    return out ?? NONE;
  }

  /** The filter results of `list` for `e` (which has no User-Agent), or null when not cacheable. */
  private cachedMatches(e: AttackEvent, list: readonly CompiledRule[]): Uint8Array | null {
    let entries = this.matchCache.get(e.pattern);
    if (entries !== undefined) {
      for (let i = 0; i < entries.length; i++) {
        const x = entries[i]!;
        if (x.kind === e.kind && x.service === e.service && x.server === e.server) return x.results;
      }
      if (entries.length >= MATCH_CACHE_PER_PATTERN) return null;
    } else {
      if (this.matchCache.size >= MATCH_CACHE_PATTERNS) return null;
      entries = [];
      this.matchCache.set(e.pattern, entries);
    }
    const results = new Uint8Array(list.length);
    for (let i = 0; i < list.length; i++) results[i] = list[i]!.match(e);
    entries.push({ kind: e.kind, server: e.server, service: e.service, results });
    return results;
  }

  private decide(
    r: CompiledRule,
    e: AttackEvent,
    ip: string,
    target: string,
    count: number,
    first: number,
  ): Decision | null {
    const t = e.time;
    const spec = r.spec;
    const screened = this.policy.screen(ip, target);
    let suppressed: Suppression | undefined;
    let banTarget = target;
    if ("suppressed" in screened) suppressed = screened.suppressed;
    else {
      banTarget = screened.target;
      if (spec.trust && this.policy.trusted(target, t)) suppressed = "trusted";
    }
    const base = {
      target: banTarget,
      ip,
      rule: spec.id,
      description: spec.description,
      count,
      first,
      last: t,
      simulate: spec.simulate,
      labels: spec.labels,
      event: e,
    };
    if (suppressed !== undefined) {
      this.st.suppressed[suppressed]++;
      this.onSuppressed?.({ ...base, duration: spec.ban, suppressed });
      return null;
    }
    const duration = this.policy.banLength(banTarget, spec.ban, t, this.enforcedBan(target, t), spec.simulate);
    this.bans.set(target, r.idx, t + duration, t);
    this.st.decisions++;
    if (spec.simulate) this.st.simulated++;
    return { ...base, duration };
  }

  /** Whether a rule that is not alert-only currently bans `target`. */
  private enforcedBan(target: string, t: number): boolean {
    const s = this.bans.peek(target, t);
    if (s < 0) return false;
    for (const r of this.compiled) if (!r.spec.simulate && this.bans.untilOf(s, r.idx) > t) return true;
    return false;
  }

  /**
   * Forgets what the engine holds about a target (after a manual unban): its running bans and
   * its per-address counts, so that a new attack is detected from scratch. Accepts an address
   * or the target it maps to.
   */
  forget(target: string): void {
    for (const k of new Set([target, this.policy.targetOf(target)])) {
      this.bans.delete(k);
      for (const r of this.compiled) r.counter?.forget(k);
    }
  }

  stats(): EngineStats {
    let tracked = this.dedup.size + this.bans.size;
    let evictions = this.dedup.evictions + this.bans.evictions;
    for (const r of this.compiled) {
      if (r.counter) {
        tracked += r.counter.size;
        evictions += r.counter.evictions;
      }
    }
    const st = this.st;
    return {
      events: st.events,
      attacks: st.attacks,
      hostile: st.hostile,
      authOk: st.authOk,
      invalid: st.invalid,
      duplicates: this.dedup.duplicates,
      decisions: st.decisions,
      simulated: st.simulated,
      suppressed: { ...st.suppressed },
      agentAllowed: st.agentAllowed,
      evictions,
      trackedKeys: tracked,
    };
  }
}
