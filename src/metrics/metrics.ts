/**
 * The one metrics object the daemon talks to. It fans each fact out to Prometheus (counters
 * read at scrape time) and StatsD (counts sent every second), whichever is configured, and keeps
 * the hot path cheap: per record one counter bump, per event a few cached lookups and bumps,
 * and no string building except the first time an address is seen in a StatsD flush window.
 */
import type { Config } from "../config/schema.js";
import { SipwardenError } from "../core/errors.js";
import type { AttackKind, EventKind, Remote } from "../core/events.js";
import type { BanListener } from "../daemon/ban-manager.js";
import type { IngestHooks } from "../daemon/ingest.js";
import type { Decision } from "../detect/types.js";
import { PrometheusMetrics, type ScrapeProviders } from "./prometheus.js";
import { StatsdMetrics, statsdComponent } from "./statsd.js";

/**
 * Kinds counted as `failed_auth` in StatsD. `unknown_account` is included: Asterisk reports a
 * wrong user name as InvalidAccountID and a wrong password as InvalidPassword/ChallengeResponseFailed,
 * but for the operator both are a failed login, and with chan_sip's `alwaysauthreject` the two
 * cannot even be told apart.
 */
export const FAILED_AUTH_KINDS: ReadonlySet<EventKind> = new Set<AttackKind>(["auth_failed", "unknown_account"]);

/** The logging calls metrics makes (a pino logger fits). */
export interface MetricsLogger {
  warn(obj: object, msg?: string): void;
}

export interface MetricsOptions {
  /** Serve Prometheus figures (the daemon adds `/metrics` to the TCP API when true). */
  prometheus: boolean;
  statsd?: { host: string; port: number; prefix: string };
  /** StatsD send period (default 1000 ms). */
  statsdFlushMs?: number;
  /** Export process_* and nodejs_* too (default true). */
  defaultMetrics?: boolean;
  logger?: MetricsLogger;
}

const STATSD_ERROR_LOG_MS = 60_000;

export class Metrics {
  readonly prometheus: PrometheusMetrics | null;
  readonly statsd: StatsdMetrics | null;
  /** Ban target → rule, for unbans by rule and active bans by rule. Holds only bans in force. */
  private readonly active = new Map<string, string>();
  /** Every rule that ever had a ban, so that its gauge reads 0 instead of vanishing. */
  private readonly rules = new Set<string>();
  private lastStatsdErrorLog = 0;
  private statsdErrorsUnlogged = 0;
  /** Pass to `Ingest`; only the callbacks something listens to are present. */
  readonly hooks: IngestHooks;
  /** Pass to `BanManager.listen`. */
  readonly banListener: BanListener;

  constructor(opts: MetricsOptions) {
    const log = opts.logger;
    const sdc = opts.statsd;
    // The schema takes any integer; hot-shots would quietly fall back to 8125 on a bad one.
    if (sdc && (!Number.isInteger(sdc.port) || sdc.port < 1 || sdc.port > 65535))
      throw new SipwardenError("CONFIG_INVALID", `StatsD port must be 1-65535, got ${sdc.port}`, {
        path: "metrics.statsd.port",
      });
    if (sdc && sdc.host.trim() === "")
      throw new SipwardenError("CONFIG_INVALID", "StatsD host is empty", { path: "metrics.statsd.host" });
    this.prometheus = opts.prometheus
      ? new PrometheusMetrics(opts.defaultMetrics === false ? { defaultMetrics: false } : {})
      : null;
    this.statsd = opts.statsd
      ? new StatsdMetrics({
          ...opts.statsd,
          prefix: opts.statsd.prefix
            .split(".")
            .filter((p) => p.length > 0)
            .map((p) => statsdComponent(p, true))
            .join("."),
          ...(opts.statsdFlushMs !== undefined ? { flushMs: opts.statsdFlushMs } : {}),
          onError: (err) => {
            this.prometheus?.statsdError();
            const now = Date.now();
            if (now - this.lastStatsdErrorLog < STATSD_ERROR_LOG_MS) {
              this.statsdErrorsUnlogged++;
              return;
            }
            log?.warn(
              { err: err.message, suppressed: this.statsdErrorsUnlogged },
              "StatsD send failed (logged at most once a minute)",
            );
            this.lastStatsdErrorLog = now;
            this.statsdErrorsUnlogged = 0;
          },
        })
      : null;
    this.hooks = this.buildHooks();
    this.banListener = {
      banned: (row, appliedMs, decision) => {
        this.active.set(row.target, row.rule);
        this.rules.add(row.rule);
        this.prometheus?.banned(row.rule, decision ? appliedMs : undefined);
        this.statsd?.count(`bans.${statsdComponent(row.rule, true)}`);
      },
      unbanned: (target, by) => {
        const rule = this.active.get(target) ?? "unknown";
        this.active.delete(target);
        this.prometheus?.unbanned(rule, by === "expiry" ? "expiry" : "manual");
        this.statsd?.count(`unbans.${statsdComponent(rule, true)}`);
      },
      simulated: (d) => this.prometheus?.simulated(d.rule),
      enforceFailed: (_target, err) =>
        this.prometheus?.banFailed(
          (err as { code?: unknown } | null)?.code === "ADDRESS_REFUSED" ? "refused" : "error",
        ),
    };
  }

  /** Builds the metrics section of the daemon config. */
  static fromConfig(cfg: Config["metrics"], extra: Omit<MetricsOptions, "prometheus" | "statsd"> = {}): Metrics {
    return new Metrics({ prometheus: cfg.prometheus, ...(cfg.statsd ? { statsd: cfg.statsd } : {}), ...extra });
  }

  private buildHooks(): IngestHooks {
    const prom = this.prometheus;
    const sd = this.statsd;
    const hooks: IngestHooks = {};
    if (prom) {
      hooks.record = (r) => prom.record(r);
      hooks.skipped = (r, reason) => prom.skipped(r, reason);
    }
    if (prom && sd) {
      hooks.event = (e, r) => {
        // Each field read once: events come in many shapes, so every property read is a slow lookup.
        const kind = e.kind;
        const service = e.service;
        prom.count(kind, e.server, service, e.pattern, e.time, r);
        countStatsd(sd, kind, service, e.remote);
      };
    } else if (prom) {
      hooks.event = (e, r) => prom.event(e, r);
    } else if (sd) {
      hooks.event = (e) => countStatsd(sd, e.kind, e.service, e.remote);
    }
    return hooks;
  }

  /** Bans already in force at start (restored from the store), so that gauges and unbans know their rule. */
  seed(bans: readonly { target: string; rule: string }[]): void {
    for (const b of bans) {
      this.active.set(b.target, b.rule);
      this.rules.add(b.rule);
    }
  }

  /** Connects the scrape-time figures of the other stages; see `ScrapeProviders`. */
  bind(providers: Omit<ScrapeProviders, "activeBans">): void {
    this.prometheus?.bind({
      ...providers,
      activeBans: () => {
        const by = new Map<string, number>();
        for (const rule of this.rules) by.set(rule, 0);
        for (const rule of this.active.values()) by.set(rule, (by.get(rule) ?? 0) + 1);
        return by;
      },
    });
  }

  /** After a reload replaced the notifier: its final counts stay in the exported counters. */
  retireNotifier(stats: Parameters<PrometheusMetrics["retireNotifier"]>[0]): void {
    this.prometheus?.retireNotifier(stats);
  }

  /** After a reload replaced the supervisor: its restart counts stay in the exported counters. */
  retireSources(health: Parameters<PrometheusMetrics["retireSources"]>[0]): void {
    this.prometheus?.retireSources(health);
  }

  setInfo(version: string, backend: string): void {
    this.prometheus?.setInfo(version, backend);
  }

  /** A decision the policy refused (the engine's `onSuppressed`). */
  suppressed(d: Decision): void {
    if (d.suppressed) this.prometheus?.suppressed(d.rule, d.suppressed);
  }

  /** Sends pending StatsD counts now. */
  flush(): Promise<void> {
    return this.statsd ? this.statsd.flush() : Promise.resolve();
  }

  /** Sends what is pending and closes the StatsD socket. Idempotent. */
  close(): Promise<void> {
    return this.statsd ? this.statsd.close() : Promise.resolve();
  }
}

function countStatsd(sd: StatsdMetrics, kind: EventKind, service: string, remote: Remote | undefined): void {
  sd.event(kind);
  // FAILED_AUTH_KINDS spelled out: two comparisons are cheaper than a Set lookup per event.
  if ((kind === "auth_failed" || kind === "unknown_account") && remote !== undefined) sd.failedAuth(service, remote);
}
