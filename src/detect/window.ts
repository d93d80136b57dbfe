/**
 * Counting primitives (threshold as sliding window or leaky bucket, density; distinct values are
 * in window-distinct.ts), one per rule, each keyed by the rule's group key. They hold fixed-size
 * per-key state in typed arrays (no per-event allocation, no growing lists of timestamps), live
 * in a bounded ClockTable, and take time only from the events.
 *
 * After a primitive fires, the key's state is cleared: the engine then holds the key under an
 * active ban, so the count starts again only once that ban is over.
 */
import { ClockTable } from "./clock-table.js";

/** What every counting primitive offers the engine. */
export interface Counter {
  /**
   * Records one event of `key` at `time` (`value`: the field that `distinct` counts). Returns
   * true when the rule fires; `count` and `first` then describe the evidence. `hash` is
   * `keyHash(key)` when the caller has it.
   */
  add(key: string, time: number, value?: string, hash?: number): boolean;
  /** Evidence behind the last firing: events (or distinct values) counted. */
  count: number;
  /** Evidence behind the last firing: time of the earliest counted event. */
  first: number;
  forget(key: string): void;
  readonly size: number;
  readonly evictions: number;
}

/** Threshold: `count` events within any sliding `window` ms. A ring of the last `count` times per key. */
export class SlidingCounter extends ClockTable implements Counter {
  count = 0;
  first = 0;
  private ring: Float64Array;
  private pos: Uint16Array;
  private filled: Uint16Array;
  private maxT: Float64Array;

  constructor(
    private readonly need: number,
    private readonly window: number,
    maxKeys: number,
  ) {
    super(maxKeys);
    if (need < 1 || need > 65535) throw new RangeError("count out of range");
    const cap = this.expires.length;
    this.ring = new Float64Array(cap * need);
    this.pos = new Uint16Array(cap);
    this.filled = new Uint16Array(cap);
    this.maxT = new Float64Array(cap);
  }

  protected grow(cap: number): void {
    const r = new Float64Array(cap * this.need);
    r.set(this.ring);
    this.ring = r;
    this.pos = growU16(this.pos, cap);
    this.filled = growU16(this.filled, cap);
    this.maxT = growF64(this.maxT, cap);
  }

  protected clear(s: number): void {
    this.pos[s] = 0;
    this.filled[s] = 0;
    this.maxT[s] = Number.NEGATIVE_INFINITY;
  }

  add(key: string, t: number, _value?: string, hash?: number): boolean {
    const s = this.slotFor(key, t, hash);
    const n = this.need;
    const base = s * n;
    const p = this.pos[s]!;
    this.ring[base + p] = t;
    this.pos[s] = p + 1 === n ? 0 : p + 1;
    const filled = this.filled[s]! + 1;
    if (filled < n) this.filled[s] = filled;
    else this.filled[s] = n;
    if (t > this.maxT[s]!) this.maxT[s] = t;
    this.expires[s] = this.maxT[s]! + this.window;
    if (filled < n) return false;
    // Logs from several sources interleave slightly out of order: use the ring's true span.
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = base; i < base + n; i++) {
      const v = this.ring[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (hi - lo > this.window) return false;
    this.count = n;
    this.first = lo;
    this.spend(s);
    return true;
  }

  forget(key: string): void {
    this.delete(key);
  }
}

/**
 * Threshold as a leaky bucket (CrowdSec's model): each event pours one unit, one unit leaks every
 * `leak` ms, and the event that finds the bucket holding `capacity` units overflows it. So with
 * no leak, the (capacity + 1)-th event fires. A bucket that drained completely starts afresh.
 */
export class LeakyCounter extends ClockTable implements Counter {
  count = 0;
  first = 0;
  protected level: Float64Array;
  protected lastT: Float64Array;
  protected firstT: Float64Array;
  protected n: Uint32Array;

  constructor(
    protected readonly capacity: number,
    protected readonly leak: number,
    maxKeys: number,
  ) {
    super(maxKeys);
    if (!(capacity >= 0) || !(leak > 0)) throw new RangeError("capacity/leak out of range");
    const cap = this.expires.length;
    this.level = new Float64Array(cap);
    this.lastT = new Float64Array(cap);
    this.firstT = new Float64Array(cap);
    this.n = new Uint32Array(cap);
  }

  protected grow(cap: number): void {
    this.level = growF64(this.level, cap);
    this.lastT = growF64(this.lastT, cap);
    this.firstT = growF64(this.firstT, cap);
    this.n = growU32(this.n, cap);
  }

  protected clear(s: number): void {
    this.level[s] = 0;
    this.n[s] = 0;
    this.lastT[s] = Number.NEGATIVE_INFINITY;
  }

  /** Leaks the bucket up to `t`; true when it had drained completely (a new bucket starts). */
  protected drain(s: number, t: number): boolean {
    const last = this.lastT[s]!;
    if (t > last) {
      if (last !== Number.NEGATIVE_INFINITY) {
        const lv = this.level[s]! - (t - last) / this.leak;
        this.level[s] = lv > 1e-9 ? lv : 0;
      }
      this.lastT[s] = t;
    }
    if (this.level[s] === 0) {
      this.n[s] = 0;
      this.firstT[s] = t;
      return true;
    }
    return false;
  }

  /** Pours one unit; true on overflow. */
  protected pour(s: number, t: number): boolean {
    const n = this.n[s]! + 1;
    this.n[s] = n;
    const lv = this.level[s]!;
    if (lv + 1 > this.capacity + 1e-9) {
      this.count = n;
      this.first = this.firstT[s]!;
      this.spend(s);
      return true;
    }
    this.level[s] = lv + 1;
    this.expires[s] = Math.max(t, this.lastT[s]!) + (lv + 1) * this.leak;
    return false;
  }

  add(key: string, t: number, _value?: string, hash?: number): boolean {
    const s = this.slotFor(key, t, hash);
    this.drain(s, t);
    return this.pour(s, t);
  }

  forget(key: string): void {
    this.delete(key);
  }
}

/**
 * Density (pike style): more than `rate` events per `per` ms. A two-bucket sliding estimate,
 * previous × (share of it still inside the window) + current, so a burst across a bucket
 * boundary is not missed, with O(1) memory per key. `first` is the start of the oldest bucket
 * that contributed.
 */
export class DensityCounter extends ClockTable implements Counter {
  count = 0;
  first = 0;
  private start: Float64Array;
  private cur: Uint32Array;
  private prev: Uint32Array;

  constructor(
    private readonly rate: number,
    private readonly per: number,
    maxKeys: number,
  ) {
    super(maxKeys);
    if (!(rate >= 0) || !(per > 0)) throw new RangeError("rate/per out of range");
    const cap = this.expires.length;
    this.start = new Float64Array(cap);
    this.cur = new Uint32Array(cap);
    this.prev = new Uint32Array(cap);
  }

  protected grow(cap: number): void {
    this.start = growF64(this.start, cap);
    this.cur = growU32(this.cur, cap);
    this.prev = growU32(this.prev, cap);
  }

  protected clear(s: number): void {
    this.cur[s] = 0;
    this.prev[s] = 0;
    this.start[s] = Number.NaN;
  }

  add(key: string, t: number, _value?: string, hash?: number): boolean {
    const s = this.slotFor(key, t, hash);
    const per = this.per;
    let start = this.start[s]!;
    if (Number.isNaN(start)) start = t;
    let el = t - start;
    if (el >= per) {
      const k = Math.floor(el / per);
      this.prev[s] = k === 1 ? this.cur[s]! : 0;
      this.cur[s] = 0;
      start += k * per;
      el = t - start;
    }
    this.start[s] = start;
    if (el < 0) el = 0;
    const cur = this.cur[s]! + 1;
    this.cur[s] = cur;
    const prev = this.prev[s]!;
    this.expires[s] = start + 2 * per;
    if (prev * (1 - el / per) + cur <= this.rate) return false;
    this.count = cur + prev;
    this.first = prev > 0 ? start - per : start;
    this.spend(s);
    return true;
  }

  forget(key: string): void {
    this.delete(key);
  }
}

export function growF64(a: Float64Array, cap: number): Float64Array {
  const b = new Float64Array(cap);
  b.set(a);
  return b;
}
export function growU32(a: Uint32Array, cap: number): Uint32Array {
  const b = new Uint32Array(cap);
  b.set(a);
  return b;
}
export function growU16(a: Uint16Array, cap: number): Uint16Array {
  const b = new Uint16Array(cap);
  b.set(a);
  return b;
}
