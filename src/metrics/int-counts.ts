/**
 * Counts per (32-bit key, tag) in one flat open-addressing table.
 *
 * Counting per address with a Map of objects costs a few cache misses per event (the bucket
 * chain, the entry, the value object, the key's characters); with thousands of attackers and
 * other work on the core, that was most of what StatsD added to the parse path. Here a slot is
 * four consecutive Int32 values (key, tag, count, unused) in one typed array, so a lookup
 * usually touches a single cache line. The key is an IPv4 address as a number, or a small id
 * standing for an IPv6 address.
 */

const MIN_SLOTS = 1024;
/** Int32 values per slot: key, tag (0 = empty), count, padding to keep slots aligned. */
const W = 4;

export class IntCounts {
  private data = new Int32Array(MIN_SLOTS * W);
  private mask = MIN_SLOTS - 1;
  private used = 0;

  /** Distinct (key, tag) pairs held. */
  get size(): number {
    return this.used;
  }

  /** Adds one to (key, tag); `key` is any signed 32-bit integer, `tag` ≥ 1. True when the pair is new. */
  inc(key: number, tag: number): boolean {
    const d = this.data;
    const mask = this.mask;
    // Fibonacci hashing spreads consecutive keys (one /24 of attackers, ids 1, 2, 3…) over the table.
    let i = (Math.imul(key ^ (tag << 24), 0x9e3779b1) >>> 0) & mask;
    for (;;) {
      const o = i * W;
      const t = d[o + 1]!;
      if (t === 0) {
        d[o] = key;
        d[o + 1] = tag;
        d[o + 2] = 1;
        if (++this.used * 2 > mask) this.resize((mask + 1) * 2);
        return true;
      }
      if (t === tag && d[o] === key) {
        d[o + 2]!++;
        return false;
      }
      i = (i + 1) & mask;
    }
  }

  /** Calls `fn` for every pair counted since the last drain, then empties the table. */
  drain(fn: (key: number, tag: number, n: number) => void): void {
    const d = this.data;
    for (let o = 0; o < d.length; o += W) {
      const t = d[o + 1]!;
      if (t !== 0) fn(d[o]!, t, d[o + 2]!);
    }
    // After a burst the table may be large; shrink it back when this window was small.
    if (d.length > 4 * MIN_SLOTS * W && this.used * 8 * W < d.length) {
      this.data = new Int32Array(MIN_SLOTS * W);
      this.mask = MIN_SLOTS - 1;
    } else {
      d.fill(0);
    }
    this.used = 0;
  }

  private resize(slots: number): void {
    const old = this.data;
    this.data = new Int32Array(slots * W);
    this.mask = slots - 1;
    this.used = 0;
    for (let o = 0; o < old.length; o += W) {
      const t = old[o + 1]!;
      if (t === 0) continue;
      this.inc(old[o]!, t);
      this.add(old[o]!, t, old[o + 2]! - 1);
    }
  }

  /** Adds `n` to a pair known to be present (used while resizing). */
  private add(key: number, tag: number, n: number): void {
    const d = this.data;
    let i = (Math.imul(key ^ (tag << 24), 0x9e3779b1) >>> 0) & this.mask;
    while (!(d[i * W + 1] === tag && d[i * W] === key)) i = (i + 1) & this.mask;
    d[i * W + 2]! += n;
  }
}
