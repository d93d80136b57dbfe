/**
 * Aggregates parsed events into the `sipwarden test` report. Pure: no I/O.
 * The JSON form is a stable, documented interface (see README, "sipwarden test").
 */
import { EVENT_KINDS, type EventKind, type SecurityEvent } from "../core/events.js";
import { keyHash, ownString } from "../core/strings.js";
import type { BanSummary } from "../detect/replay.js";

/** Per address we list at most this many distinct account names (the count goes on). */
const MAX_ACCOUNTS = 50;
/** Distinct accounts are counted (see PairSet) up to this many per address; past it the count stops. */
const MAX_ACCOUNT_HASHES = 100_000;
const KIND_INDEX = new Map<EventKind, number>(EVENT_KINDS.map((k, i) => [k, i]));

/** An account name's 32-bit hash (as an int32). */
function nameHash(s: string): number {
  return keyHash(s) | 0;
}
const MAX_HOSTILE = 100;

export interface AddressSummary {
  ip: string;
  events: number;
  kinds: Partial<Record<EventKind, number>>;
  /** Distinct account names seen (at most 50 listed). */
  accounts: string[];
  accountCount: number;
}

export interface HostileLine {
  file: string;
  line: number;
  pattern: string;
  candidates: string[];
  text: string;
}

export type { BanSummary } from "../detect/replay.js";

export interface TestReportJson {
  files: string[];
  lines: number;
  bytes: number;
  events: number;
  hostile: number;
  skippedLong: number;
  byKind: Partial<Record<EventKind, number>>;
  byPattern: Record<string, number>;
  addresses: AddressSummary[];
  hostileLines: HostileLine[];
  bans: BanSummary[];
  /** Bans the policy suppressed (allowlist, the host's own addresses, trust after auth). */
  suppressed: number;
  elapsedMs: number;
  linesPerSecond: number;
}

/** Open addressing grows at this load: linear probing stays within a cache line or two. */
const MAX_LOAD = 0.75;

/** The first empty slot (0) from `home` on, by linear probing: where a rehash puts an entry. */
function freeSlot(slots: Int32Array, home: number): number {
  const mask = slots.length - 1;
  let i = home & mask;
  while (slots[i] !== 0) i = (i + 1) & mask;
  return i;
}

/**
 * Distinct (address, account name) pairs for all addresses, in one open-addressing table of
 * 32-bit keys: one int32 per pair, so that the table of a large enumeration (185,000 pairs on
 * the benchmark log, 1 MiB) stays within a core's L2 cache.
 *
 * A pair of an address index and a name number (see NameTable) both below 2¹⁶ is packed into
 * 32 bits and mixed by a bijection, so such pairs are counted exactly. Past 65,536 addresses or
 * names, the key mixes the address index with a 32-bit hash of the name instead: two names of
 * one address then collide when their hashes do, and over N such pairs about N²/2³³ are taken
 * for ones already seen.
 */
class PairSet {
  // 262,144 slots (1 MiB) from the start, then doubled: a growth rehashes every pair in code
  // that V8 has not optimised yet (it runs a few times per process), which costs far more than
  // the zeroed pages of a table that is larger than a small log needs (they cost nothing until
  // touched).
  private slots = new Int32Array(1 << 18);
  private size = 0;
  private limit = (1 << 18) * MAX_LOAD;
  /** The key that mixes to 0 (which marks an empty slot) is kept here. */
  private zero = false;

  /** Adds address index a with name number id (both < 2¹⁶); true when the pair is new. */
  addExact(a: number, id: number): boolean {
    return this.insert((a << 16) | id);
  }

  /** Adds address index a with a 32-bit name hash h; true when the pair is new. */
  addHashed(a: number, h: number): boolean {
    return this.insert((Math.imul(a + 1, 0x9e3779b1) + h) | 0);
  }

  private insert(key: number): boolean {
    // fmix32 (MurmurHash3's finaliser): a bijection on 32 bits that spreads keys over the table.
    let fp = Math.imul(key ^ (key >>> 16), 0x85ebca6b);
    fp = Math.imul(fp ^ (fp >>> 13), 0xc2b2ae35);
    fp ^= fp >>> 16;
    if (fp === 0) {
      if (this.zero) return false;
      this.zero = true;
      return true;
    }
    const slots = this.slots;
    const mask = slots.length - 1;
    let i = fp & mask;
    for (let x = slots[i]!; x !== 0; x = slots[i]!) {
      if (x === fp) return false;
      i = (i + 1) & mask;
    }
    slots[i] = fp;
    if (++this.size > this.limit) this.grow();
    return true;
  }

  private grow(): void {
    const old = this.slots;
    const n = old.length * 2;
    const slots = new Int32Array(n);
    for (let j = 0; j < old.length; j++) {
      const fp = old[j]!;
      if (fp !== 0) slots[freeSlot(slots, fp)] = fp;
    }
    this.slots = slots;
    this.limit = n * MAX_LOAD;
  }
}

/** Names are numbered up to this many per report; the pair table packs a number in 16 bits. */
const MAX_NAME_IDS = 1 << 16;

/**
 * Account names, numbered in order of appearance. Scanners try the same dictionary (100, 101,
 * …, admin) from every address, so a log holds far fewer names than (address, name) pairs:
 * 2,700 against 185,000 on the benchmark log. One copy of each name is kept, however many
 * addresses list it, and a name seen before costs a probe by its hash and one comparison.
 */
class NameTable {
  readonly names: string[] = [];
  private hashes = new Int32Array(256);
  /** Open addressing by hash: name number + 1, 0 for empty. */
  private slots = new Int32Array(1024);

  /** The number of `s` (hash h), numbering it if new; -1 once MAX_NAME_IDS names are numbered. */
  id(s: string, h: number): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    let i = h & mask;
    for (let x = slots[i]!; x !== 0; x = slots[i]!) {
      if (this.hashes[x - 1] === h && this.names[x - 1] === s) return x - 1;
      i = (i + 1) & mask;
    }
    const id = this.names.length;
    if (id >= MAX_NAME_IDS) return -1;
    // A copy: a slice of the line would keep the whole line alive.
    this.names.push(ownString(s));
    if (id === this.hashes.length) this.hashes = grow(this.hashes, id * 2);
    this.hashes[id] = h;
    slots[i] = id + 1;
    if (this.names.length > slots.length * MAX_LOAD) this.rehash();
    return id;
  }

  private rehash(): void {
    const n = this.slots.length * 4;
    const slots = new Int32Array(n);
    for (let id = 0; id < this.names.length; id++) slots[freeSlot(slots, this.hashes[id]!)] = id + 1;
    this.slots = slots;
  }
}

/**
 * Per-event counters by pattern: one Map lookup per event. A pattern yields one or a few kinds,
 * so the counter also remembers the last kind seen with it and that kind's index, which spares
 * most events a second Map lookup.
 */
interface Counter {
  n: number;
  kind: EventKind;
  k: number;
}

const KINDS = EVENT_KINDS.length;

/** A copy of x in a new array of n elements (of x's type). */
function grow<T extends Uint32Array<ArrayBuffer> | Int32Array<ArrayBuffer>>(x: T, n: number): T {
  const y = new (x.constructor as new (n: number) => T)(n);
  y.set(x);
  return y;
}

function kindsOf(counts: Uint32Array, from: number): Partial<Record<EventKind, number>> {
  const out: Partial<Record<EventKind, number>> = {};
  for (let i = 0; i < KINDS; i++) if (counts[from + i]! > 0) out[EVENT_KINDS[i]!] = counts[from + i]!;
  return out;
}

export class TestReport {
  lines = 0;
  bytes = 0;
  skippedLong = 0;
  events = 0;
  hostile = 0;
  readonly files: string[] = [];
  readonly hostileLines: HostileLine[] = [];
  private readonly kinds = new Uint32Array(KINDS);
  // A Map, not an object: dynamic string keys on hot paths send objects into dictionary mode.
  private readonly patterns = new Map<string, Counter>();
  // Addresses are numbered in order of appearance; their counters live in flat arrays.
  private readonly addrIndex = new Map<string, number>();
  private readonly ips: string[] = [];
  private addrEvents = new Uint32Array(1024);
  private addrKinds = new Uint32Array(1024 * KINDS);
  private accountCounts = new Uint32Array(1024);
  /**
   * The first MAX_ACCOUNTS distinct account names of each address, as one log of (address,
   * name) in order of appearance, grouped by address only for the output: 8 bytes per listed
   * name, nothing per address. A name is its number, or for a name past the NameTable's
   * capacity, -1 - its index in `extraNames`.
   */
  // Sized for 1,300 addresses with 50 names each: growing them inside add() once it is optimised
  // costs a deoptimisation (untouched pages of a typed array cost no memory).
  private listedAddr = new Int32Array(1 << 16);
  private listedName = new Int32Array(1 << 16);
  private listedCount = 0;
  private readonly extraNames: string[] = [];
  private readonly nameTable = new NameTable();
  private readonly pairs = new PairSet();

  get byKind(): Partial<Record<EventKind, number>> {
    return kindsOf(this.kinds, 0);
  }

  get byPattern(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [p, c] of this.patterns) out[p] = c.n;
    return out;
  }

  add(ev: SecurityEvent, file: string, lineNo: number): void {
    this.events++;
    const kind = ev.kind;
    let pc = this.patterns.get(ev.pattern);
    if (pc === undefined) {
      pc = { n: 0, kind, k: KIND_INDEX.get(kind) ?? 0 };
      this.patterns.set(ev.pattern, pc);
    } else if (pc.kind !== kind) {
      pc.kind = kind;
      pc.k = KIND_INDEX.get(kind) ?? 0;
    }
    pc.n++;
    const k = pc.k;
    this.kinds[k]!++;
    if (kind === "hostile") {
      this.hostile++;
      if (this.hostileLines.length < MAX_HOSTILE)
        this.hostileLines.push({
          file,
          line: lineNo,
          pattern: ev.pattern,
          candidates: [...ev.candidates],
          text: ev.line,
        });
      return;
    }
    const ip = ev.remote.address;
    let a = this.addrIndex.get(ip);
    if (a === undefined) a = this.newAddress(ip);
    this.addrEvents[a]!++;
    this.addrKinds[a * KINDS + k]!++;
    const acc = ev.account;
    if (acc === undefined || acc === "") return;
    const count = this.accountCounts[a]!;
    if (count >= MAX_ACCOUNT_HASHES) return;
    const h = nameHash(acc);
    const id = this.nameTable.id(acc, h);
    if (id >= 0 && a < 1 << 16 ? this.pairs.addExact(a, id) : this.pairs.addHashed(a, h)) {
      this.accountCounts[a] = count + 1;
      if (count < MAX_ACCOUNTS) {
        let ref = id;
        if (id < 0) {
          ref = -1 - this.extraNames.length;
          this.extraNames.push(ownString(acc));
        }
        const n = this.listedCount++;
        if (n === this.listedAddr.length) {
          this.listedAddr = grow(this.listedAddr, n * 2);
          this.listedName = grow(this.listedName, n * 2);
        }
        this.listedAddr[n] = a;
        this.listedName[n] = ref;
      }
    }
  }

  /** The names listed per address, in order of appearance. */
  private listedNames(): string[][] {
    const out = this.ips.map((): string[] => []);
    for (let i = 0; i < this.listedCount; i++) {
      const ref = this.listedName[i]!;
      out[this.listedAddr[i]!]!.push(ref >= 0 ? this.nameTable.names[ref]! : this.extraNames[-1 - ref]!);
    }
    return out;
  }

  private newAddress(ip: string): number {
    const a = this.ips.length;
    this.ips.push(ip);
    this.addrIndex.set(ip, a);
    if (a === this.addrEvents.length) {
      this.addrEvents = grow(this.addrEvents, a * 2);
      this.accountCounts = grow(this.accountCounts, a * 2);
      this.addrKinds = grow(this.addrKinds, a * 2 * KINDS);
    }
    return a;
  }

  /** Addresses by event count, highest first (ties by address, for stable output). */
  addresses(limit = Number.POSITIVE_INFINITY): AddressSummary[] {
    const order = this.ips.map((_, i) => i);
    const ev = this.addrEvents;
    const ips = this.ips;
    order.sort((x, y) => ev[y]! - ev[x]! || (ips[x]! < ips[y]! ? -1 : 1));
    const names = this.listedNames();
    return order.slice(0, limit).map((a) => ({
      ip: ips[a]!,
      events: ev[a]!,
      kinds: kindsOf(this.addrKinds, a * KINDS),
      accounts: names[a]!,
      accountCount: this.accountCounts[a]!,
    }));
  }

  get addressCount(): number {
    return this.ips.length;
  }

  toJSON(elapsedMs: number, bans: BanSummary[] = [], suppressed = 0): TestReportJson {
    return {
      files: this.files,
      lines: this.lines,
      bytes: this.bytes,
      events: this.events,
      hostile: this.hostile,
      skippedLong: this.skippedLong,
      byKind: this.byKind,
      byPattern: this.byPattern,
      addresses: this.addresses(),
      hostileLines: this.hostileLines,
      bans,
      suppressed,
      elapsedMs: Math.round(elapsedMs * 1000) / 1000,
      linesPerSecond: elapsedMs > 0 ? Math.round((this.lines / elapsedMs) * 1000) : 0,
    };
  }
}
