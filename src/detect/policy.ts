/**
 * Ban policy: what a rule firing turns into. Whom to ban (the address, or its IPv6 prefix),
 * whether the ban is suppressed (the host itself, the allowlist, a recent successful login), and
 * for how long (escalation for repeat offenders, capped, with deterministic jitter).
 */
import { CidrList, normalizeCidr, normalizeIp } from "../core/address.js";
import { ClockTable } from "./clock-table.js";
import { unitHash } from "./hash.js";
import { type BanHistory, MemoryBanHistory } from "./history.js";

/** The `policy` section of the config (durations in ms). */
export interface PolicyOptions {
  /** CIDRs (v4 and v6) that are never banned. */
  allowlist: readonly string[];
  /** User-Agent substrings that UA/scanner rules never match. */
  allowAgents: readonly string[];
  /** An address that logged in successfully within this many ms is trusted; 0 disables. */
  trustAfterAuth: number;
  /** IPv6 bans (and counting) cover the address's network of this length; 128 = the address. */
  ipv6Prefix: number;
  escalation: { factor: number; max: number; jitter: number };
  maxTrackedKeys: number;
  dedupWindow: number;
}

export const DEFAULT_POLICY: PolicyOptions = Object.freeze({
  allowlist: [],
  allowAgents: [],
  trustAfterAuth: 600_000,
  ipv6Prefix: 64,
  escalation: Object.freeze({ factor: 2, max: 7 * 86_400_000, jitter: 0 }),
  maxTrackedKeys: 200_000,
  dedupWindow: 2000,
});

/** Why a decision was not enforced. */
export type Suppression = "allowlist" | "trusted" | "self";

/** Addresses that are always the host's own and never banned. */
const ALWAYS_SELF = ["127.0.0.0/8", "::1", "0.0.0.0", "::"];

class TrustTable extends ClockTable {
  protected grow(): void {}
  protected clear(): void {}
  touch(key: string, until: number, now: number): void {
    const s = this.slotFor(key, now);
    if (until > this.expires[s]! || this.fresh) this.expires[s] = until;
  }
}

export class BanPolicy {
  readonly options: PolicyOptions;
  private readonly self: CidrList;
  private readonly allow: CidrList;
  private readonly trust: TrustTable;
  private readonly prefixCache = new Map<string, string>();
  readonly history: BanHistory;

  constructor(options: Partial<PolicyOptions> = {}, hostAddresses: readonly string[] = [], history?: BanHistory) {
    this.options = { ...DEFAULT_POLICY, ...options };
    this.self = new CidrList(ALWAYS_SELF);
    for (const raw of hostAddresses) {
      const ip = normalizeIp(raw.replace(/%.*$/, ""));
      if (ip) this.self.add(ip);
    }
    this.allow = new CidrList();
    for (const c of this.options.allowlist) this.allow.add(c);
    this.trust = new TrustTable(this.options.maxTrackedKeys);
    this.history = history ?? new MemoryBanHistory();
  }

  /** What a ban of `ip` covers, and the unit events are counted by: the address, or its IPv6 prefix. */
  targetOf(ip: string): string {
    const prefix = this.options.ipv6Prefix;
    if (prefix >= 128 || !ip.includes(":")) return ip;
    let t = this.prefixCache.get(ip);
    if (t === undefined) {
      t = normalizeCidr(`${ip}/${prefix}`)?.text ?? ip;
      if (this.prefixCache.size >= 65536) this.prefixCache.clear();
      this.prefixCache.set(ip, t);
    }
    return t;
  }

  /**
   * Whether `ip` may be banned, and as what. A prefix that would cover an allowlisted or own
   * address shrinks to the attacking address alone, so that an IPv6 ban never locks out the
   * host or a trusted neighbour in the same /64.
   */
  screen(ip: string, target: string): { suppressed: "self" | "allowlist" } | { target: string } {
    if (this.self.contains(ip)) return { suppressed: "self" };
    if (this.allow.size > 0 && this.allow.contains(ip)) return { suppressed: "allowlist" };
    if (target !== ip && (this.self.contains(target) || this.allow.contains(target))) return { target: ip };
    return { target };
  }

  /** Records a successful login from `target` at `time`. */
  authenticated(target: string, time: number): void {
    if (this.options.trustAfterAuth <= 0) return;
    this.trust.touch(target, time + this.options.trustAfterAuth, time);
  }

  /** Whether `target` logged in successfully within the trust window before `time`. */
  trusted(target: string, time: number): boolean {
    if (this.options.trustAfterAuth <= 0) return false;
    return this.trust.peek(target, time) >= 0;
  }

  /**
   * Ban length for `target`: `base` × factor^(earlier offences), capped at the escalation
   * maximum (or at `base` if that is longer), ± jitter seeded by target and time. `ongoing`: the
   * target is already banned by another rule, so this is the same offence and is not recorded
   * again; `simulate`: alert only, nothing is recorded.
   */
  banLength(target: string, base: number, time: number, ongoing: boolean, simulate: boolean): number {
    const { factor, max, jitter } = this.options.escalation;
    let n = this.history.offences(target, time);
    if (ongoing) n = Math.max(0, n - 1);
    else if (!simulate) this.history.record(target, time);
    const cap = Math.max(max, base);
    let d = Math.min(base * factor ** n, cap);
    if (jitter > 0) d = Math.min(d * (1 + jitter * (2 * unitHash(target, time) - 1)), cap);
    return Math.round(d);
  }
}
