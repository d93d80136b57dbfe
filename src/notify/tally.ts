/**
 * A bounded summary of bans for one mail (or one digest period). Every address is counted, but
 * only the newest `holdLimit` are kept in detail: under a flood the mail lists the top ones and
 * says "and N more", and memory stays flat however many bans arrive.
 */
import type { BanNotice } from "./types.js";

/** One address in a tally: its notices merged. */
export interface HeldBan {
  target: string;
  /** Rule of the first notice (the one the address is counted under). */
  rule: string;
  reason: string;
  count: number;
  duration: number | null;
  first: number;
  last: number;
}

const OTHER_RULES = "(other rules)";

export class BanTally {
  /** Insertion-ordered, so the oldest entry is the first key. */
  readonly held = new Map<string, HeldBan>();
  readonly byRule = new Map<string, number>();
  /** Distinct addresses counted (held or not). */
  total = 0;
  /** Addresses counted but no longer held in detail. */
  evicted = 0;
  unbans = 0;
  /** Earliest `first` and latest `last` of the counted attempts. */
  start = Number.POSITIVE_INFINITY;
  end = Number.NEGATIVE_INFINITY;
  /** Failed delivery attempts of this content. */
  attempts = 0;

  constructor(
    readonly holdLimit: number,
    readonly ruleLimit = 100,
  ) {}

  get empty(): boolean {
    return this.total === 0 && this.unbans === 0;
  }

  addBan(n: BanNotice): void {
    this.start = Math.min(this.start, n.first);
    this.end = Math.max(this.end, n.last);
    const h = this.held.get(n.target);
    if (h) {
      mergeInto(h, n);
      return;
    }
    this.countRule(n.rule, 1);
    this.total++;
    this.hold({ ...n });
  }

  private hold(h: HeldBan): void {
    this.held.set(h.target, h);
    if (this.held.size > this.holdLimit) {
      this.held.delete(this.held.keys().next().value!);
      this.evicted++;
    }
  }

  private countRule(rule: string, n: number): void {
    const key = this.byRule.has(rule) || this.byRule.size < this.ruleLimit ? rule : OTHER_RULES;
    this.byRule.set(key, (this.byRule.get(key) ?? 0) + n);
  }

  /** Folds `newer` into this tally (used to re-queue a mail that could not be sent). */
  merge(newer: BanTally): void {
    this.start = Math.min(this.start, newer.start);
    this.end = Math.max(this.end, newer.end);
    this.unbans += newer.unbans;
    this.total += newer.total;
    this.evicted += newer.evicted;
    for (const [rule, n] of newer.byRule) this.countRule(rule, n);
    for (const h of newer.held.values()) {
      const mine = this.held.get(h.target);
      if (mine) {
        // Counted in both: count it once.
        mergeInto(mine, h);
        this.total--;
        this.countRule(h.rule, -1);
      } else {
        this.hold({ ...h });
      }
    }
  }

  /** The `n` held addresses with the most attempts (ties: earliest first). */
  top(n: number): HeldBan[] {
    return [...this.held.values()].sort((a, b) => b.count - a.count || a.first - b.first).slice(0, n);
  }

  /** Rules by number of addresses, most first. */
  rules(): [string, number][] {
    return [...this.byRule.entries()].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }
}

function mergeInto(h: HeldBan, n: Pick<BanNotice, "count" | "duration" | "first" | "last" | "reason">): void {
  h.count += n.count;
  h.first = Math.min(h.first, n.first);
  h.last = Math.max(h.last, n.last);
  h.duration = h.duration === null || n.duration === null ? null : Math.max(h.duration, n.duration);
  h.reason = n.reason;
}
