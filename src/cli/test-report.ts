/**
 * Aggregates parsed events into the `sipwarden test` report. Pure: no I/O.
 * The JSON form is a stable, documented interface (see README, "sipwarden test").
 */
import { EVENT_KINDS, type EventKind, type SecurityEvent } from "../core/events.js";
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

/** FNV-1a, cut to 30 bits so the value stays a small integer. */
function nameHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h & 0x3fffffff;
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

interface AddrState {
  events: number;
  /** Events per kind, by the kind's index in EVENT_KINDS. */
  kinds: Uint32Array;
  /** The first MAX_ACCOUNTS distinct account names. */
  names: string[];
  /** Hashes of the distinct account names, created on the first account seen. */
  seen: Set<number> | null;
}

function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function kindsOf(counts: Uint32Array): Partial<Record<EventKind, number>> {
  const out: Partial<Record<EventKind, number>> = {};
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out[EVENT_KINDS[i]!] = counts[i]!;
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
  // Maps, not objects: dynamic string keys on hot paths send objects into dictionary mode.
  private readonly kinds = new Map<EventKind, number>();
  private readonly patterns = new Map<string, number>();
  private readonly addrs = new Map<string, AddrState>();

  get byKind(): Partial<Record<EventKind, number>> {
    return Object.fromEntries(this.kinds) as Partial<Record<EventKind, number>>;
  }

  get byPattern(): Record<string, number> {
    return Object.fromEntries(this.patterns);
  }

  add(ev: SecurityEvent, file: string, lineNo: number): void {
    this.events++;
    bump(this.kinds, ev.kind);
    bump(this.patterns, ev.pattern);
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
    let a = this.addrs.get(ip);
    if (a === undefined) {
      a = { events: 0, kinds: new Uint32Array(EVENT_KINDS.length), names: [], seen: null };
      this.addrs.set(ip, a);
    }
    a.events++;
    a.kinds[KIND_INDEX.get(ev.kind) ?? 0]!++;
    const acc = ev.account;
    if (acc !== undefined && acc !== "") {
      const h = nameHash(acc);
      if (a.seen === null) a.seen = new Set();
      if (!a.seen.has(h) && a.seen.size < MAX_ACCOUNT_HASHES) {
        a.seen.add(h);
        if (a.names.length < MAX_ACCOUNTS) a.names.push(acc);
      }
    }
  }

  /** Addresses by event count, highest first (ties by address, for stable output). */
  addresses(limit = Number.POSITIVE_INFINITY): AddressSummary[] {
    const all = [...this.addrs.entries()].sort((x, y) => y[1].events - x[1].events || (x[0] < y[0] ? -1 : 1));
    return all.slice(0, limit).map(([ip, a]) => ({
      ip,
      events: a.events,
      kinds: kindsOf(a.kinds),
      accounts: a.names,
      accountCount: a.seen?.size ?? 0,
    }));
  }

  get addressCount(): number {
    return this.addrs.size;
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
