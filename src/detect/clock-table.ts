/**
 * A bounded string-keyed table of slots, the storage under every per-key detector state.
 *
 * Why not a plain Map: a flood of spoofed source addresses must not grow memory without bound,
 * and must not push the real attacker's state out either. Slots live in typed arrays owned by
 * subclasses. When the table is full, a CLOCK hand (second-chance LRU) picks the victim: expired
 * slots go first, then slots whose reference counter is zero. A key gains a reference on every
 * hit (saturating at MAX_REF), so a key seen repeatedly survives several sweeps while a one-off
 * spoofed key is the first to go. An entry also expires on its own once `expires[slot]` is
 * behind the event time; a cleaner cursor frees a couple of expired slots on every insert, so
 * memory shrinks after an attack without any timer.
 *
 * The key → slot index is an open-addressing hash table (linear probing, backward-shift
 * deletion) in typed arrays: under a flood every event inserts and evicts a key, and V8's Map
 * pays for that churn with rehashes and garbage (about 3× slower in our measurements).
 */

import { keyHash, ownString } from "../core/strings.js";

const MAX_REF = 3;
const INITIAL = 1024;

/** Positions for `slots` keys at a load factor of at most 1/2. */
function tableSize(slots: number): number {
  let n = 16;
  while (n < slots * 2) n *= 2;
  return n;
}

/** A pre-filled array: growing a holey array by `length =` can turn it into a slow dictionary. */
function denseArray(n: number): (string | undefined)[] {
  return new Array<string | undefined>(n).fill(undefined);
}

export abstract class ClockTable {
  /** Hash table: slot + 1 per position (0 = empty), and the hash of the key there. */
  private table: Int32Array;
  private thash: Uint32Array;
  private mask: number;
  private nkeys = 0;
  private keys: (string | undefined)[];
  private khash: Uint32Array;
  /** Event time after which the slot's state is void. */
  protected expires: Float64Array;
  private ref: Uint8Array;
  private free: number[] = [];
  private used = 0;
  private cap: number;
  private hand = 0;
  private cleaner = 0;
  /** True when the last `slotFor` call created the slot (or replaced expired state). */
  fresh = false;
  evictions = 0;

  constructor(readonly maxKeys: number) {
    if (!(maxKeys >= 1)) throw new RangeError("maxKeys must be at least 1");
    this.cap = Math.min(INITIAL, maxKeys);
    this.expires = new Float64Array(this.cap);
    this.ref = new Uint8Array(this.cap);
    this.keys = denseArray(this.cap);
    this.khash = new Uint32Array(this.cap);
    const tcap = tableSize(this.cap);
    this.table = new Int32Array(tcap);
    this.thash = new Uint32Array(tcap);
    this.mask = tcap - 1;
  }

  /** Number of keys currently tracked (expired ones not yet reclaimed included). */
  get size(): number {
    return this.nkeys;
  }

  /** Grows the subclass's per-slot arrays to `cap` slots, keeping slots [0, old). */
  protected abstract grow(cap: number): void;
  /** Clears the state of a slot that is being (re)used for a new key or after expiry. */
  protected abstract clear(slot: number): void;

  /** The slot of `key` if tracked and not expired at `now`, else -1. Does not count as a hit. */
  peek(key: string, now: number, h: number = keyHash(key)): number {
    const p = this.find(key, h);
    if (p < 0) return -1;
    const s = this.table[p]! - 1;
    return this.expires[s]! < now ? -1 : s;
  }

  /**
   * Empties a slot whose rule just fired: counting starts afresh, and the slot counts as expired
   * (the cleaner may take it; the next event for its key starts over).
   */
  protected spend(slot: number): void {
    this.clear(slot);
    this.expires[slot] = Number.NEGATIVE_INFINITY;
  }

  /**
   * The slot for `key`, created (or reset, if its state expired before `now`) when needed.
   * `fresh` tells the caller whether the slot's state was just cleared; the caller then sets
   * the slot's expiry. `h` is `keyHash(key)`, when the caller already has it.
   */
  slotFor(key: string, now: number, h: number = keyHash(key)): number {
    const p = this.find(key, h);
    if (p >= 0) {
      const s = this.table[p]! - 1;
      if (this.expires[s]! < now) {
        // Until the caller sets the new expiry, the cleaner must not take the slot.
        this.expires[s] = Number.POSITIVE_INFINITY;
        this.clear(s);
        this.ref[s] = 0;
        this.fresh = true;
      } else {
        const r = this.ref[s]!;
        if (r < MAX_REF) this.ref[s] = r + 1;
        this.fresh = false;
      }
      return s;
    }
    this.reclaim(now);
    const s = this.allocate(now);
    const k = ownString(key);
    this.keys[s] = k;
    this.khash[s] = h;
    // Reclaiming and eviction moved entries: look the insertion point up again.
    const q = -this.find(k, h) - 1;
    this.table[q] = s + 1;
    this.thash[q] = h;
    this.nkeys++;
    this.ref[s] = 0;
    this.expires[s] = Number.POSITIVE_INFINITY;
    this.clear(s);
    this.fresh = true;
    return s;
  }

  delete(key: string): boolean {
    const p = this.find(key, keyHash(key));
    if (p < 0) return false;
    this.release(this.table[p]! - 1);
    return true;
  }

  /** Forgets every key (e.g. on rule reload). */
  reset(): void {
    this.table.fill(0);
    this.nkeys = 0;
    this.keys = denseArray(this.cap);
    this.free = [];
    this.used = 0;
    this.hand = 0;
    this.cleaner = 0;
  }

  /** Table position of `key`, or -(insertion position) - 1 when absent. */
  private find(key: string, h: number): number {
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const v = this.table[i]!;
      if (v === 0) return -i - 1;
      if (this.thash[i] === h && this.keys[v - 1] === key) return i;
      i = (i + 1) & mask;
    }
  }

  /** Empties table position `pos`, shifting later entries of its probe run back (no tombstones). */
  private unindex(pos: number): void {
    const mask = this.mask;
    const table = this.table;
    const thash = this.thash;
    let i = pos;
    table[i] = 0;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = table[j]!;
      if (v === 0) break;
      const home = thash[j]! & mask;
      // The entry stays unless its home lies cyclically outside (i, j].
      if (j > i ? home <= i || home > j : home <= i && home > j) {
        table[i] = v;
        thash[i] = thash[j]!;
        table[j] = 0;
        i = j;
      }
    }
    this.nkeys--;
  }

  private reindex(): void {
    const tcap = tableSize(this.cap);
    this.table = new Int32Array(tcap);
    this.thash = new Uint32Array(tcap);
    this.mask = tcap - 1;
    for (let s = 0; s < this.cap; s++) {
      const k = this.keys[s];
      if (k === undefined) continue;
      const h = this.khash[s]!;
      const p = -this.find(k, h) - 1;
      this.table[p] = s + 1;
      this.thash[p] = h;
    }
  }

  /** Removes the key of slot `s` from the index; the slot's state is left as it is. */
  private drop(s: number): void {
    const k = this.keys[s];
    if (k === undefined) return;
    this.unindex(this.find(k, this.khash[s]!));
    this.keys[s] = undefined;
  }

  private release(s: number): void {
    if (this.keys[s] === undefined) return;
    this.drop(s);
    this.free.push(s);
  }

  /** Frees up to two expired slots per insert: cheap, and enough to keep pace with inserts. */
  private reclaim(now: number): void {
    if (this.used === 0) return;
    for (let i = 0; i < 2; i++) {
      const s = this.cleaner;
      this.cleaner = s + 1 >= this.used ? 0 : s + 1;
      if (this.keys[s] !== undefined && this.expires[s]! < now) this.release(s);
    }
  }

  private allocate(now: number): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.used < this.cap) return this.used++;
    if (this.cap < this.maxKeys) {
      const cap = Math.min(this.cap * 2, this.maxKeys);
      const e = new Float64Array(cap);
      e.set(this.expires);
      this.expires = e;
      const r = new Uint8Array(cap);
      r.set(this.ref);
      this.ref = r;
      const k = denseArray(cap);
      for (let i = 0; i < this.cap; i++) k[i] = this.keys[i];
      this.keys = k;
      const kh = new Uint32Array(cap);
      kh.set(this.khash);
      this.khash = kh;
      this.grow(cap);
      this.cap = cap;
      this.reindex();
      return this.used++;
    }
    // Full: CLOCK sweep. Terminates within MAX_REF + 1 revolutions.
    for (;;) {
      const s = this.hand;
      this.hand = s + 1 >= this.cap ? 0 : s + 1;
      if (this.keys[s] === undefined) return s;
      if (this.expires[s]! >= now) {
        const r = this.ref[s]!;
        if (r > 0) {
          this.ref[s] = r - 1;
          continue;
        }
        this.evictions++;
      }
      this.drop(s);
      return s;
    }
  }
}
