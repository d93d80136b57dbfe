/**
 * What the notifier is told, and the contract of a sink. The ban path calls the notifier
 * synchronously; a sink only queues there and delivers later, so a slow or dead receiver can
 * never delay a ban. A sink never throws to its caller and logs its own failures.
 */

/** A ban as the notifier sees it (the fields of a detector decision). */
export interface BanNotice {
  /** Banned address or CIDR. */
  readonly target: string;
  /** Rule id (or `manual`). */
  readonly rule: string;
  readonly reason: string;
  /** Attempts that led to the ban. */
  readonly count: number;
  /** Ban length in ms, or null for a permanent ban. */
  readonly duration: number | null;
  /** Epoch ms of the first and the last attempt counted. */
  readonly first: number;
  readonly last: number;
}

/** A lifted ban. */
export interface UnbanNotice {
  readonly target: string;
  /** `expiry`, `cli`, `api`, `cluster`, … */
  readonly by: string;
  readonly reason?: string;
  /** Epoch ms; the notifier's clock when absent. */
  readonly at?: number;
}

export type LifecyclePhase = "start" | "stop";

/** Facts for the start/stop notice; all optional. */
export interface LifecycleInfo {
  readonly version?: string;
  /** Bans active (start: restored from the store; stop: still in force). */
  readonly activeBans?: number;
  /** Why the daemon stops (`SIGTERM`, `config reload`, an error). */
  readonly reason?: string;
  /** Epoch ms; the notifier's clock when absent. */
  readonly at?: number;
}

/** A pino-compatible logger (only the calls the notifier makes). */
export interface NotifyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: NotifyLogger = { info() {}, warn() {}, error() {} };

/** Per-sink counters, for `sipwarden status` and Prometheus. */
export interface SinkStats {
  /** Deliveries (mails, POSTs) the receiver accepted. */
  sent: number;
  /** Deliveries given up after their attempts (logged). */
  failed: number;
  /** Attempts that were retried (webhooks: network errors, 5xx, 429). */
  retried: number;
  /** Notices that were never delivered: queue overflow, or content of a failed delivery. */
  dropped: number;
  /** Notices waiting for delivery. */
  pending: number;
}

/**
 * One destination. All notice methods are synchronous, O(1) and never throw; delivery happens
 * later on timers. `close` delivers what is pending within `budgetMs`, then stops every timer.
 */
export interface Sink {
  /** `email`, `webhook:hooks.example.net` (never a full URL: webhook URLs often hold tokens). */
  readonly name: string;
  banned(n: BanNotice): void;
  unbanned(n: UnbanNotice): void;
  lifecycle(phase: LifecyclePhase, info: LifecycleInfo): void;
  stats(): SinkStats;
  close(budgetMs: number): Promise<void>;
}
