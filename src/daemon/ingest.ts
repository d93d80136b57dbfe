/**
 * The hot path of the daemon: raw record → SecurityEvent → decisions. Synchronous per record.
 * Read positions and the recent-events ring are committed in small batches (one SQLite
 * transaction per ~50 ms), bans immediately (BanManager).
 */
import type { EventRecord, SecurityEvent } from "../core/events.js";
import { toRecord } from "../core/events.js";
import type { Logger } from "../core/logger.js";
import type { DetectionEngine } from "../detect/engine.js";
import { amiParser } from "../parsers/ami.js";
import { LineClassifier, ROUTE_SKIP } from "../parsers/index.js";
import type { LineParser } from "../parsers/types.js";
import type { RawRecord } from "../sources/types.js";
import type { Store } from "../store/types.js";
import type { BanManager } from "./ban-manager.js";

/** Commit read positions and events this soon after the first pending record, when idle. */
const FLUSH_MS = 50;
/** During a backlog (a flush carried many events), commit at most this often. */
const BACKLOG_FLUSH_MS = 1000;
const BACKLOG_EVENTS = 1000;
/**
 * During a backlog the recent-events ring is written at most this often (read positions still
 * every BACKLOG_FLUSH_MS): only the newest events survive in the ring anyway, and writing
 * thousands of rows a second would slow down reading the very lines that lead to bans.
 */
const BACKLOG_EVENTS_WRITE_MS = 10_000;
const HOSTILE_LOG_EVERY_MS = 10_000;

export interface IngestHooks {
  /** Every parsed event (metrics). */
  event?(e: SecurityEvent, record: RawRecord): void;
  /** Every record read, parsed or not. */
  record?(record: RawRecord): void;
  /** A record skipped because its parser threw, or an event the detector threw on. */
  skipped?(record: RawRecord, reason: "parser_error" | "detector_error"): void;
}

export class Ingest {
  private readonly classifiers = new Map<string, LineClassifier>();
  private readonly subscribers = new Set<(e: EventRecord) => void>();
  private pendingOffsets = new Map<string, string>();
  /**
   * Events not yet written to the recent-events ring, raw, in a ring of `recentCap` slots:
   * converting and inserting every one during a burst cost more than parsing it, and the store
   * keeps only the newest `recentCap` anyway, so older ones are overwritten here unconverted.
   */
  private pendingRing: (SecurityEvent | undefined)[] = [];
  /** Next slot of pendingRing to write; pendingEvents: how many slots hold unwritten events. */
  private ringHead = 0;
  private pendingEvents = 0;
  /** Events since the last flush (backlog detection). */
  private sinceFlush = 0;
  private lastEventsWrite = 0;
  private nextFlushMs = FLUSH_MS;
  private hostileLoggedAt = Number.NEGATIVE_INFINITY;
  /** Hostile lines not logged since the last warning (the warning reports them as `since`). */
  private hostileUnlogged = 0;
  private pendingCount = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Events per second over the last minute, for `status`. */
  private readonly perSecond = new Uint32Array(60);
  private lastSecond = 0;
  readonly totals = { records: 0, events: 0, hostile: 0, lastEventAt: 0 };

  constructor(
    private engine: DetectionEngine,
    private readonly bans: BanManager,
    private readonly store: Store,
    private zone: string,
    private custom: readonly LineParser[],
    private readonly log: Logger,
    private readonly hooks: IngestHooks = {},
    /** Config `store.recentEvents`: how many events the ring keeps. */
    private readonly recentCap = 10_000,
  ) {}

  /** After a reload. */
  rewire(engine: DetectionEngine, zone: string, custom: readonly LineParser[]): void {
    this.engine = engine;
    this.zone = zone;
    this.custom = custom;
    this.classifiers.clear();
  }

  subscribe(fn: (e: EventRecord) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  private parserFor(format: RawRecord["format"]): LineParser | LineClassifier {
    if (format === "ami") return amiParser;
    let c = this.classifiers.get(format);
    if (!c) {
      c = new LineClassifier(format, this.custom);
      this.classifiers.set(format, c);
    }
    return c;
  }

  /**
   * For file sources: true when a line of this format certainly holds no event, judged on its
   * raw bytes (the parsers' byte-level router; never with custom patterns, which could read any
   * line). Follows reloads, since it asks the current classifier every time.
   */
  skipLine(format: RawRecord["format"], buf: Uint8Array, start: number, end: number): boolean {
    if (format === "ami") return false;
    const classifier = this.parserFor(format) as LineClassifier;
    return classifier.route !== undefined && classifier.route(buf, start, end) === ROUTE_SKIP;
  }

  /** Processes one record. Never throws: a bad record is logged and skipped. */
  handle = (record: RawRecord): void => {
    if (record.skipped !== undefined) {
      // Lines skipped on their bytes: counted as read, nothing to parse.
      this.totals.records += record.skipped;
      this.hooks.record?.(record);
      this.notePosition(record);
      return;
    }
    this.totals.records++;
    this.hooks.record?.(record);
    let ev: SecurityEvent | null = null;
    try {
      ev = this.parserFor(record.format).parse(record.text, { zone: this.zone, now: record.received });
    } catch (err) {
      this.log.error({ err, source: record.source }, "parser failed on a record (skipped)");
      this.hooks.skipped?.(record, "parser_error");
    }
    if (ev) this.onEvent(ev, record);
    this.notePosition(record);
  };

  private notePosition(record: RawRecord): void {
    if (record.position !== undefined) {
      this.pendingOffsets.set(record.source, record.position);
      this.pendingCount++;
    }
    if (!this.timer && (this.pendingCount > 0 || this.pendingEvents > 0))
      this.timer = setTimeout(() => this.flush(), this.nextFlushMs);
  }

  private onEvent(ev: SecurityEvent, record: RawRecord): void {
    const t = this.totals;
    t.events++;
    t.lastEventAt = record.received;
    if (ev.kind === "hostile") {
      t.hostile++;
      // An attacker can send planted lines by the thousand: log one, then a count at most every 10 s.
      if (record.received - this.hostileLoggedAt >= HOSTILE_LOG_EVERY_MS) {
        this.log.warn(
          { source: record.source, pattern: ev.pattern, candidates: ev.candidates, since: this.hostileUnlogged },
          "hostile line: an address may have been planted; not banning on it",
        );
        this.hostileLoggedAt = record.received;
        this.hostileUnlogged = 0;
      } else this.hostileUnlogged++;
    }
    this.tick(record.received);
    this.hooks.event?.(ev, record);
    this.sinceFlush++;
    const cap = this.recentCap;
    if (cap > 0) {
      this.pendingRing[this.ringHead] = ev;
      this.ringHead = this.ringHead + 1 === cap ? 0 : this.ringHead + 1;
      if (this.pendingEvents < cap) this.pendingEvents++;
    }
    if (this.subscribers.size > 0) {
      const rec = toRecord(ev);
      for (const s of this.subscribers) s(rec);
    }
    let decisions: ReturnType<DetectionEngine["observe"]>;
    try {
      decisions = this.engine.observe(ev);
    } catch (err) {
      this.log.error({ err, source: record.source }, "detector failed on an event (skipped)");
      this.hooks.skipped?.(record, "detector_error");
      return;
    }
    for (const d of decisions) this.bans.decide(d, record.received);
  }

  private tick(now: number): void {
    const sec = Math.floor(now / 1000);
    if (sec !== this.lastSecond) {
      const gap = Math.min(sec - this.lastSecond, 60);
      for (let i = 1; i <= gap; i++) this.perSecond[(this.lastSecond + i) % 60] = 0;
      this.lastSecond = sec;
    }
    this.perSecond[sec % 60]!++;
  }

  eventsPerMinute(now = Date.now()): number {
    this.tick(now);
    this.perSecond[Math.floor(now / 1000) % 60]!--;
    let s = 0;
    for (const v of this.perSecond) s += v;
    return s;
  }

  /** The unwritten events, oldest first, and forgets them. */
  private takeEvents(): SecurityEvent[] {
    const cap = this.recentCap;
    const n = this.pendingEvents;
    const out: SecurityEvent[] = new Array(n);
    let i = (this.ringHead - n + cap) % cap;
    for (let k = 0; k < n; k++) {
      out[k] = this.pendingRing[i]!;
      this.pendingRing[i] = undefined;
      i = i + 1 === cap ? 0 : i + 1;
    }
    this.pendingEvents = 0;
    return out;
  }

  /**
   * Commits read positions and buffered events in one transaction. During a backlog the events
   * wait (see BACKLOG_EVENTS_WRITE_MS); `final` writes everything (shutdown).
   */
  flush(final = false): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const backlog = this.sinceFlush >= BACKLOG_EVENTS;
    this.nextFlushMs = backlog ? BACKLOG_FLUSH_MS : FLUSH_MS;
    this.sinceFlush = 0;
    const now = Date.now();
    const writeEvents =
      this.pendingEvents > 0 && (final || !backlog || now - this.lastEventsWrite >= BACKLOG_EVENTS_WRITE_MS);
    if (this.pendingCount === 0 && !writeEvents) {
      // Events held back by a backlog are written by a later, quieter flush.
      if (this.pendingEvents > 0 && !this.timer) this.timer = setTimeout(() => this.flush(), this.nextFlushMs);
      return;
    }
    const offsets = this.pendingOffsets;
    const events = writeEvents ? this.takeEvents().map(toRecord) : [];
    if (writeEvents) this.lastEventsWrite = now;
    this.pendingOffsets = new Map();
    this.pendingCount = 0;
    try {
      this.store.commitBatch(() => {
        for (const [k, v] of offsets) this.store.setOffset(k, v);
        if (events.length) this.store.addEvents(events);
      });
    } catch (err) {
      this.log.error({ err }, "could not save read positions and events");
    }
    if (this.pendingEvents > 0 && !this.timer) this.timer = setTimeout(() => this.flush(), this.nextFlushMs);
  }
}
