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
 * Distinct accounts are counted by a 30-bit hash of the name (a small-integer set is several
 * times cheaper than a set of fresh strings on this path), up to this many per address; at
 * 100,000 names the expected undercount from collisions is under 5.
 */
const MAX_ACCOUNT_HASHES = 100_000;
const KIND_INDEX = new Map<EventKind, number>(EVENT_KINDS.map((k, i) => [k, i]));

/** An account name's hash, cut to 30 bits (a small integer in V8). */
function nameHash(s: string): number {
  return keyHash(s) & 0x3fffffff;
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
 * Distinct (address, account hash) pairs, for all addresses in one open-addressing table: one
 * probe per event instead of a Set per address. A pair takes two adjacent int32s (address + 1,
 * hash; 0: empty), so a probe reads one cache line and growing needs no arithmetic on the key.
 * Grows at half load.
 */
class PairSet {
  // 16,384 pair slots to start, growing by 4× at half load. A growth runs only a few times per
  // report, so its rehash loop runs unoptimised: fewer, larger ones cost less. Starting large
  // instead costs more: a cold `sipwarden test` ran its first 50,000 lines 30–50 ms slower
  // with a 4 MiB table (first touches of its pages).
  private slots = new Int32Array(2 << 14);
  private size = 0;

  /** Adds (a, h), h < 2³⁰; true when the pair is new. */
  add(a: number, h: number): boolean {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    const tag = a + 1;
    let i = (Math.imul(a, 0x9e3779b1) ^ h) & mask;
    for (let x = slots[2 * i]!; x !== 0; x = slots[2 * i]!) {
      if (x === tag && slots[2 * i + 1] === h) return false;
      i = (i + 1) & mask;
    }
    slots[2 * i] = tag;
    slots[2 * i + 1] = h;
    if (++this.size * 4 > slots.length) this.grow();
    return true;
  }

  private grow(): void {
    const old = this.slots;
    const slots = new Int32Array(old.length * 4);
    const mask = (slots.length >> 1) - 1;
    for (let j = 0; j < old.length; j += 2) {
      const tag = old[j]!;
      if (tag === 0) continue;
      const h = old[j + 1]!;
      let i = (Math.imul(tag - 1, 0x9e3779b1) ^ h) & mask;
      while (slots[2 * i] !== 0) i = (i + 1) & mask;
      slots[2 * i] = tag;
      slots[2 * i + 1] = h;
    }
    this.slots = slots;
  }
}

/** Per-event counters by pattern: one Map lookup per event. */
interface Counter {
  n: number;
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
    const k = KIND_INDEX.get(ev.kind) ?? 0;
    this.kinds[k]!++;
    const pc = this.patterns.get(ev.pattern);
    if (pc === undefined) this.patterns.set(ev.pattern, { n: 1 });
    else pc.n++;
    if (ev.kind === "hostile") {
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
