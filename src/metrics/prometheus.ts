/**
 * The Prometheus side: a private prom-client Registry (never the global one, so two daemons or
 * tests in one process never share counters) holding the metrics of catalog.ts.
 *
 * prom-client hashes the label set on every `inc()`, even through `labels(...)` children. The
 * per-record and per-event counters therefore live in plain cells that the hot path bumps (after
 * a cached lookup), and are copied into prom-client only when somebody scrapes. Rare things
 * (bans, failures) use prom-client directly. Figures that other stages already count (enforcer,
 * notifier, supervisor, detector) are read from them at scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { SecurityEvent } from "../core/events.js";
import type { SourceHealth } from "../core/supervisor.js";
import type { EngineStats } from "../detect/types.js";
import type { EnforcerStats } from "../enforce/types.js";
import type { SinkStats } from "../notify/types.js";
import type { RawRecord } from "../sources/types.js";
import { METRICS, type MetricDoc, TIME_TO_BAN_BUCKETS } from "./catalog.js";

/** Why a record was not used for detection (`sipwarden_lines_skipped_total{reason}`). */
export type SkipReason = "parser_error" | "hostile" | "detector_error";

/** What the other stages report at scrape time. Every provider is optional and may return nothing yet. */
export interface ScrapeProviders {
  sources?(): readonly Pick<SourceHealth, "id" | "state" | "restarts">[];
  enforcer?(): { readonly backend: string; stats(): EnforcerStats } | null;
  notifier?(): Record<string, SinkStats>;
  engine?(): Pick<EngineStats, "trackedKeys"> | null;
  /** Active bans by rule. */
  activeBans?(): ReadonlyMap<string, number>;
}

interface SourceCell {
  readonly source: string;
  records: number;
  parserErrors: number;
  hostile: number;
  detectorErrors: number;
  /** Epoch ms difference of the newest event; NaN until one arrived. */
  lagMs: number;
}

interface CountCell {
  readonly labels: Record<string, string>;
  n: number;
}

interface EventCell extends CountCell {
  readonly labels: { server: string; service: string; kind: string };
}

/**
 * Counters that restart from zero when their owner is rebuilt (a reload builds a new notifier
 * and, when sources change, a new supervisor). Exported values keep growing: the daemon hands
 * over the old owner's final figures (`retire`), and as a fallback a drop adds the last value
 * seen to a base.
 */
class Monotonic {
  private readonly last = new Map<string, number>();
  private readonly base = new Map<string, number>();

  retire(key: string, final: number): void {
    this.base.set(key, (this.base.get(key) ?? 0) + Math.max(final, this.last.get(key) ?? 0));
    this.last.set(key, 0);
  }

  value(key: string, v: number): number {
    const prev = this.last.get(key) ?? 0;
    let b = this.base.get(key) ?? 0;
    if (v < prev) {
      b += prev;
      this.base.set(key, b);
    }
    this.last.set(key, v);
    return b + v;
  }
}

function counter(registry: Registry, d: MetricDoc, collect?: (this: Counter<string>) => void): Counter<string> {
  return new Counter({
    name: d.name,
    help: d.help,
    labelNames: [...d.labels],
    registers: [registry],
    ...(collect ? { collect } : {}),
  });
}

function gauge(registry: Registry, d: MetricDoc, collect?: (this: Gauge<string>) => void): Gauge<string> {
  return new Gauge({
    name: d.name,
    help: d.help,
    labelNames: [...d.labels],
    registers: [registry],
    ...(collect ? { collect } : {}),
  });
}

/**
 * Most distinct (server, service, kind) series. Services come from the SIP server's own fields,
 * but a custom pattern or a strange log could still produce many: past this, new ones are
 * counted under service="other" rather than growing the exposition without bound.
 */
export const MAX_EVENT_SERIES = 500;

export interface PrometheusOptions {
  /** Also export prom-client's process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

export class PrometheusMetrics {
  readonly registry = new Registry();
  private providers: ScrapeProviders = {};
  private readonly sources = new Map<string, SourceCell>();
  private lastSource: SourceCell | null = null;
  /** server → service → kind → cell. */
  private readonly events = new Map<string, Map<string, Map<string, EventCell>>>();
  private readonly eventCells: EventCell[] = [];
  /**
   * The last cell used per parser pattern: a pattern id nearly always means one server, service
   * and kind, so one lookup of an interned string usually replaces the three nested ones.
   */
  private readonly byPattern = new Map<string, EventCell>();
  private readonly mono = new Monotonic();
  private readonly info: Gauge<string>;
  private readonly bans: Counter<string>;
  private readonly unbans: Counter<string>;
  private readonly simulatedC: Counter<string>;
  private readonly suppressedC: Counter<string>;
  private readonly banFailures: Counter<string>;
  private readonly timeToBan: Histogram<string>;
  private readonly statsdErrors: Counter<string>;

  constructor(opts: PrometheusOptions = {}) {
    const r = this.registry;
    const src = this.sources;
    const eventCells = this.eventCells;
    const mono = this.mono;
    const p = () => this.providers;

    this.info = gauge(r, METRICS.info);
    counter(r, METRICS.records, function () {
      this.reset();
      for (const c of src.values()) this.inc({ source: c.source }, c.records);
    });
    counter(r, METRICS.events, function () {
      this.reset();
      for (const c of eventCells) this.inc(c.labels, c.n);
    });
    counter(r, METRICS.skipped, function () {
      this.reset();
      for (const c of src.values()) {
        this.inc({ source: c.source, reason: "parser_error" }, c.parserErrors);
        this.inc({ source: c.source, reason: "hostile" }, c.hostile);
        this.inc({ source: c.source, reason: "detector_error" }, c.detectorErrors);
      }
    });
    gauge(r, METRICS.lag, function () {
      this.reset();
      for (const c of src.values()) if (!Number.isNaN(c.lagMs)) this.set({ source: c.source }, c.lagMs / 1000);
    });
    gauge(r, METRICS.up, function () {
      this.reset();
      for (const h of p().sources?.() ?? []) this.set({ source: h.id }, h.state === "running" ? 1 : 0);
    });
    counter(r, METRICS.restarts, function () {
      this.reset();
      for (const h of p().sources?.() ?? []) this.inc({ source: h.id }, mono.value(`restarts\0${h.id}`, h.restarts));
    });
    gauge(r, METRICS.activeBans, function () {
      this.reset();
      for (const [rule, n] of p().activeBans?.() ?? []) this.set({ rule }, n);
    });
    this.bans = counter(r, METRICS.bans);
    this.unbans = counter(r, METRICS.unbans);
    this.simulatedC = counter(r, METRICS.simulated);
    this.suppressedC = counter(r, METRICS.suppressed);
    this.banFailures = counter(r, METRICS.banFailures);
    this.timeToBan = new Histogram({
      name: METRICS.timeToBan.name,
      help: METRICS.timeToBan.help,
      buckets: TIME_TO_BAN_BUCKETS,
      registers: [r],
    });
    const enforcerStats = () => {
      const e = p().enforcer?.();
      return e ? { backend: e.backend, s: e.stats() } : null;
    };
    counter(r, METRICS.enforcerCommands, function () {
      this.reset();
      const e = enforcerStats();
      if (e) this.inc({ backend: e.backend }, e.s.commands);
    });
    counter(r, METRICS.enforcerErrors, function () {
      this.reset();
      const e = enforcerStats();
      if (!e) return;
      this.inc({ backend: e.backend, type: "command" }, e.s.failures);
      this.inc({ backend: e.backend, type: "conntrack" }, e.s.conntrackFailures);
      this.inc({ backend: e.backend, type: "gave_up" }, e.s.dropped);
    });
    counter(r, METRICS.enforcerRetries, function () {
      this.reset();
      const e = enforcerStats();
      if (e) this.inc({ backend: e.backend }, e.s.retries);
    });
    counter(r, METRICS.notifySent, function () {
      this.reset();
      for (const [sink, s] of Object.entries(p().notifier?.() ?? {}))
        this.inc({ sink }, mono.value(`sent\0${sink}`, s.sent));
    });
    counter(r, METRICS.notifyFailures, function () {
      this.reset();
      for (const [sink, s] of Object.entries(p().notifier?.() ?? {})) {
        this.inc({ sink, type: "failed" }, mono.value(`failed\0${sink}`, s.failed));
        this.inc({ sink, type: "dropped" }, mono.value(`dropped\0${sink}`, s.dropped));
      }
    });
    gauge(r, METRICS.notifyPending, function () {
      this.reset();
      for (const [sink, s] of Object.entries(p().notifier?.() ?? {})) this.set({ sink }, s.pending);
    });
    gauge(r, METRICS.trackedKeys, function () {
      const e = p().engine?.();
      this.set(e ? e.trackedKeys : 0);
    });
    this.statsdErrors = counter(r, METRICS.statsdErrors);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: r });
  }

  /** Connects the scrape-time figures of the other stages (callable again after a rebuild). */
  bind(providers: ScrapeProviders): void {
    this.providers = { ...this.providers, ...providers };
  }

  /** The notifier was rebuilt (reload): keep its final counts; the new one counts from 0. */
  retireNotifier(stats: Record<string, SinkStats>): void {
    for (const [sink, s] of Object.entries(stats)) {
      this.mono.retire(`sent\0${sink}`, s.sent);
      this.mono.retire(`failed\0${sink}`, s.failed);
      this.mono.retire(`dropped\0${sink}`, s.dropped);
    }
  }

  /** The supervisor was rebuilt (reload with new sources): keep the restarts counted so far. */
  retireSources(health: readonly Pick<SourceHealth, "id" | "restarts">[]): void {
    for (const h of health) this.mono.retire(`restarts\0${h.id}`, h.restarts);
  }

  setInfo(version: string, backend: string): void {
    this.info.reset();
    this.info.set({ version, backend }, 1);
  }

  private source(id: string): SourceCell {
    const last = this.lastSource;
    if (last !== null && last.source === id) return last;
    let c = this.sources.get(id);
    if (!c) {
      c = { source: id, records: 0, parserErrors: 0, hostile: 0, detectorErrors: 0, lagMs: Number.NaN };
      this.sources.set(id, c);
    }
    this.lastSource = c;
    return c;
  }

  record(r: RawRecord): void {
    // A marker record stands for `skipped` lines read and skipped on their bytes.
    this.source(r.source).records += r.skipped ?? 1;
  }

  event(e: SecurityEvent, r: RawRecord): void {
    this.count(e.kind, e.server, e.service, e.pattern, e.time, r);
  }

  /**
   * `event` with the fields already read: events come in many object shapes (one per parser), so
   * each property read is a slow lookup, and the facade reads each one once for both outputs.
   */
  count(kind: string, server: string, service: string, pattern: string, time: number, r: RawRecord): void {
    const s = this.source(r.source);
    s.lagMs = r.received - time;
    if (kind === "hostile") s.hostile++;
    const hit = this.byPattern.get(pattern);
    if (hit !== undefined) {
      const l = hit.labels;
      if (l.kind === kind && l.service === service && l.server === server) {
        hit.n++;
        return;
      }
    }
    const c = this.eventCell(kind, server, service);
    c.n++;
    // Patterns are a fixed set in the parsers (and the config's custom patterns): bounded.
    if (this.byPattern.size < MAX_EVENT_SERIES) this.byPattern.set(pattern, c);
  }

  private eventCell(kind: string, server: string, eventService: string): EventCell {
    let byService = this.events.get(server);
    if (!byService) {
      byService = new Map();
      this.events.set(server, byService);
    }
    let service = eventService;
    let byKind = byService.get(service);
    if (!byKind) {
      if (this.eventCells.length >= MAX_EVENT_SERIES) {
        service = "other";
        byKind = byService.get(service);
      }
      if (!byKind) {
        byKind = new Map();
        byService.set(service, byKind);
      }
    }
    let c = byKind.get(kind);
    if (!c) {
      c = { labels: { server, service, kind }, n: 0 };
      byKind.set(kind, c);
      this.eventCells.push(c);
    }
    return c;
  }

  skipped(r: RawRecord, reason: Exclude<SkipReason, "hostile">): void {
    const s = this.source(r.source);
    if (reason === "parser_error") s.parserErrors++;
    else s.detectorErrors++;
  }

  banned(rule: string, appliedMs: number | undefined): void {
    this.bans.inc({ rule });
    if (appliedMs !== undefined) this.timeToBan.observe(appliedMs / 1000);
  }

  unbanned(rule: string, reason: "expiry" | "manual"): void {
    this.unbans.inc({ rule, reason });
  }

  simulated(rule: string): void {
    this.simulatedC.inc({ rule });
  }

  suppressed(rule: string, reason: string): void {
    this.suppressedC.inc({ rule, reason });
  }

  banFailed(reason: "refused" | "error"): void {
    this.banFailures.inc({ reason });
  }

  statsdError(): void {
    this.statsdErrors.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
