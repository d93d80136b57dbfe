/**
 * Distinct-value primitives: how many different values of a field (account names, …) one key
 * shows, over a sliding window or as CrowdSec's leaky bucket with `distinct`. Values are kept
 * as seeded 53-bit hashes, never as the attacker's strings.
 */
import { ClockTable } from "./clock-table.js";
import { hash53 } from "./hash.js";
import { type Counter, growF64, growU16, LeakyCounter } from "./window.js";

/**
 * Distinct values as a leaky bucket (CrowdSec's `distinct`): an event whose value was already
 * poured into the current bucket is ignored; a new value pours one unit. The set of values seen
 * is a ring of 2 × (capacity + 1) hashes, so a very slow enumeration may count a value again.
 */
export class DistinctLeakyCounter extends LeakyCounter {
  private readonly k: number;
  private seen: Float64Array;
  private wpos: Uint16Array;

  constructor(
    capacity: number,
    leak: number,
    maxKeys: number,
    private readonly seed: number,
  ) {
    super(capacity, leak, maxKeys);
    this.k = Math.min(2 * (capacity + 1), 512);
    this.seen = new Float64Array(this.expires.length * this.k);
    this.wpos = new Uint16Array(this.expires.length);
  }

  protected override grow(cap: number): void {
    super.grow(cap);
    const s = new Float64Array(cap * this.k);
    s.set(this.seen);
    this.seen = s;
    this.wpos = growU16(this.wpos, cap);
  }

  protected override clear(s: number): void {
    super.clear(s);
    this.seen.fill(0, s * this.k, (s + 1) * this.k);
    this.wpos[s] = 0;
  }

  override add(key: string, t: number, value?: string, hash?: number): boolean {
    if (value === undefined || value === "") return false;
    const h = hash53(value, this.seed);
    const s = this.slotFor(key, t, hash);
    if (this.drain(s, t)) {
      this.seen.fill(0, s * this.k, (s + 1) * this.k);
      this.wpos[s] = 0;
    }
    const base = s * this.k;
    for (let i = base; i < base + this.k; i++) if (this.seen[i] === h) return false;
    const w = this.wpos[s]!;
    this.seen[base + w] = h;
    this.wpos[s] = w + 1 === this.k ? 0 : w + 1;
    return this.pour(s, t);
  }
}

/**
 * Distinct: `count` different values of a field within any sliding `window` ms. Each key keeps
 * `count` (hash, last-seen) pairs; a new value replaces the stalest pair.
 */
export class DistinctCounter extends ClockTable implements Counter {
  count = 0;
  first = 0;
  private hashes: Float64Array;
  private times: Float64Array;
  private maxT: Float64Array;

  constructor(
    private readonly need: number,
    private readonly window: number,
    maxKeys: number,
    private readonly seed: number,
  ) {
    super(maxKeys);
    if (need < 1 || need > 65535) throw new RangeError("count out of range");
    const cap = this.expires.length;
    this.hashes = new Float64Array(cap * need);
    this.times = new Float64Array(cap * need);
    this.maxT = new Float64Array(cap);
  }

  protected grow(cap: number): void {
    const h = new Float64Array(cap * this.need);
    h.set(this.hashes);
    this.hashes = h;
    const t = new Float64Array(cap * this.need);
    t.set(this.times);
    this.times = t;
    this.maxT = growF64(this.maxT, cap);
  }

  protected clear(s: number): void {
    this.hashes.fill(0, s * this.need, (s + 1) * this.need);
    this.maxT[s] = Number.NEGATIVE_INFINITY;
  }

  add(key: string, t: number, value?: string, hash?: number): boolean {
    if (value === undefined || value === "") return false;
    const h = hash53(value, this.seed);
    const s = this.slotFor(key, t, hash);
    const n = this.need;
    const base = s * n;
    const w = this.window;
    let slot = -1;
    let stalest = -1;
    let stalestT = Number.POSITIVE_INFINITY;
    for (let i = base; i < base + n; i++) {
      const hv = this.hashes[i]!;
      if (hv === h) {
        slot = i;
        break;
      }
      const ti = hv === 0 ? Number.NEGATIVE_INFINITY : this.times[i]!;
      if (ti < stalestT) {
        stalestT = ti;
        stalest = i;
      }
    }
    if (t > this.maxT[s]!) this.maxT[s] = t;
    this.expires[s] = this.maxT[s]! + w;
    if (slot >= 0) {
      if (t > this.times[slot]!) this.times[slot] = t;
      return false;
    }
    this.hashes[stalest] = h;
    this.times[stalest] = t;
    let c = 0;
    let lo = Number.POSITIVE_INFINITY;
    for (let i = base; i < base + n; i++) {
      if (this.hashes[i] === 0) continue;
      const ti = this.times[i]!;
      if (Math.abs(t - ti) <= w) {
        c++;
        if (ti < lo) lo = ti;
      }
    }
    if (c < n) return false;
    this.count = c;
    this.first = lo;
    this.spend(s);
    return true;
  }

  forget(key: string): void {
    this.delete(key);
  }
}
