/**
 * Aggregates parsed events into the `sipwarden test` report. Pure: no I/O.
 * The JSON form is a stable, documented interface (see README, "sipwarden test").
 */
import { EVENT_KINDS, type EventKind, type SecurityEvent } from "../core/events.js";
import { keyHash } from "../core/strings.js";
import type { BanSummary } from "../detect/replay.js";

/** Per address we list at most this many distinct account names (the count goes on). */
const MAX_ACCOUNTS = 50;
/**
 * Distinct accounts are counted by a fingerprint of (address, name) (see PairSet) up to this
 * many per address; past it the count stops.
 */
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

/**
 * Distinct (address, account name) pairs for all addresses in one open-addressing table of
 * 32-bit fingerprints: one int32 per pair, so that the table of a large enumeration (185,000
 * pairs on the benchmark log) stays within a core's L2 cache, where a probe costs a few ns
 * instead of a memory round trip. A fingerprint mixes the address index with a 32-bit hash of
 * the name, bijectively for a given address: two names of one address collide only when their
 * 32-bit hashes do, and over N distinct pairs in all the expected number of pairs taken for
 * ones already seen is N²/2³³ (4 at 185,000 pairs, 116 at a million).
 */
class PairSet {
  // 16,384 slots to start (64 KiB: a cold start pays for every page it touches), grown by 4×
  // while small (a growth rehashes in unoptimised code, so fewer cost less), then by 2×.
  private slots = new Int32Array(1 << 14);
  private size = 0;
  private limit = (1 << 14) * 0.7;

  /** Adds (a, h) for an address index a and a 32-bit name hash h; true when the pair is new. */
  add(a: number, h: number): boolean {
    const slots = this.slots;
    const mask = slots.length - 1;
    let fp = Math.imul(a + 1, 0x9e3779b1) + h;
    fp = Math.imul(fp ^ (fp >>> 16), 0x85ebca6b);
    fp = Math.imul(fp ^ (fp >>> 13), 0xc2b2ae35);
    fp ^= fp >>> 16;
    if (fp === 0) fp = 1;
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
    const n = old.length < 1 << 18 ? old.length * 4 : old.length * 2;
    const slots = new Int32Array(n);
    const mask = n - 1;
    for (let j = 0; j < old.length; j++) {
      const fp = old[j]!;
      if (fp === 0) continue;
      let i = fp & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = fp;
    }
    this.slots = slots;
    this.limit = n * 0.7;
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

function grow(x: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const y = new Uint32Array(n);
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
  /** The first MAX_ACCOUNTS distinct account names per address. */
  private readonly names: string[][] = [];
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
    if (acc !== undefined && acc !== "" && this.accountCounts[a]! < MAX_ACCOUNT_HASHES) {
      if (this.pairs.add(a, nameHash(acc))) {
        this.accountCounts[a]!++;
        const names = this.names[a]!;
        if (names.length < MAX_ACCOUNTS) names.push(acc);
      }
    }
  }

  private newAddress(ip: string): number {
    const a = this.ips.length;
    this.ips.push(ip);
    this.names.push([]);
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
    return order.slice(0, limit).map((a) => ({
      ip: ips[a]!,
      events: ev[a]!,
      kinds: kindsOf(this.addrKinds, a * KINDS),
      accounts: this.names[a]!,
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
