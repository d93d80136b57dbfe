/**
 * Aggregates parsed events into the `sipwarden test` report. Pure: no I/O.
 * The JSON form is a stable, documented interface (see README, "sipwarden test").
 */
import type { EventKind, SecurityEvent } from "../core/events.js";
import type { BanSummary } from "../detect/replay.js";

/** Per address we keep at most this many distinct account names (the count is still exact). */
const MAX_ACCOUNTS = 50;
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
  kinds: Map<EventKind, number>;
  /** Distinct accounts, created on the first account seen. */
  accounts: Set<string> | null;
  accountOverflow: number;
}

function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
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
      a = { events: 0, kinds: new Map(), accounts: null, accountOverflow: 0 };
      this.addrs.set(ip, a);
    }
    a.events++;
    bump(a.kinds, ev.kind);
    const acc = ev.account;
    if (acc !== undefined && acc !== "") {
      if (a.accounts === null) a.accounts = new Set([acc]);
      else if (!a.accounts.has(acc)) {
        if (a.accounts.size < MAX_ACCOUNTS) a.accounts.add(acc);
        else a.accountOverflow++;
      }
    }
  }

  /** Addresses by event count, highest first (ties by address, for stable output). */
  addresses(limit = Number.POSITIVE_INFINITY): AddressSummary[] {
    const all = [...this.addrs.entries()].sort((x, y) => y[1].events - x[1].events || (x[0] < y[0] ? -1 : 1));
    return all.slice(0, limit).map(([ip, a]) => ({
      ip,
      events: a.events,
      kinds: Object.fromEntries(a.kinds) as Partial<Record<EventKind, number>>,
      accounts: a.accounts ? [...a.accounts] : [],
      accountCount: (a.accounts?.size ?? 0) + a.accountOverflow,
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
