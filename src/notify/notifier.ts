/**
 * Fans notices out to every configured sink. The ban path calls `banned` synchronously: each
 * call copies the notice, hands it to every sink's queue and returns; it never awaits, never
 * throws and does no I/O, so a slow or dead receiver can never delay a ban.
 */
import { hostname } from "node:os";
import type { Config } from "../config/schema.js";
import { EmailSink, type EmailSinkOptions } from "./email.js";
import type { Scheduler } from "./scheduler.js";
import type { BanNotice, LifecycleInfo, LifecyclePhase, NotifyLogger, Sink, SinkStats, UnbanNotice } from "./types.js";
import { WebhookSink, type WebhookSinkOptions } from "./webhook.js";

export class Notifier {
  private closing: Promise<void> | undefined;

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly logger: NotifyLogger,
  ) {}

  /** Names of the configured sinks (`email`, `webhook:hooks.example.net`). */
  get names(): string[] {
    return this.sinks.map((s) => s.name);
  }

  banned(n: BanNotice): void {
    if (this.closing || this.sinks.length === 0) return;
    // A copy: the caller may reuse or mutate its decision object after we return.
    const copy: BanNotice = {
      target: n.target,
      rule: n.rule,
      reason: n.reason,
      count: n.count,
      duration: n.duration,
      first: n.first,
      last: n.last,
    };
    for (const s of this.sinks) this.guard(s, () => s.banned(copy));
  }

  unbanned(n: UnbanNotice): void {
    if (this.closing || this.sinks.length === 0) return;
    const copy: UnbanNotice = { ...n };
    for (const s of this.sinks) this.guard(s, () => s.unbanned(copy));
  }

  lifecycle(phase: LifecyclePhase, info: LifecycleInfo = {}): void {
    if (this.closing) return;
    const copy = { ...info };
    for (const s of this.sinks) this.guard(s, () => s.lifecycle(phase, copy));
  }

  /** Counters per sink name. */
  stats(): Record<string, SinkStats> {
    const out: Record<string, SinkStats> = {};
    for (const s of this.sinks) out[s.name] = s.stats();
    return out;
  }

  /**
   * Delivers what is pending (the stop notice included) within `budgetMs`, then stops every
   * timer. Later notices are ignored. Idempotent; never rejects.
   */
  close(budgetMs = 5000): Promise<void> {
    this.closing ??= Promise.allSettled(this.sinks.map((s) => s.close(budgetMs))).then((results) => {
      for (const [i, r] of results.entries()) {
        if (r.status === "rejected") {
          this.logger.error({ sink: this.sinks[i]!.name, err: String(r.reason) }, "notifier sink failed to close");
        }
      }
    });
    return this.closing;
  }

  private guard(s: Sink, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      // A sink bug must not reach the ban path.
      this.logger.error({ sink: s.name, err: e instanceof Error ? e.message : String(e) }, "notifier sink threw");
    }
  }
}

export interface NotifierOptions {
  logger: NotifyLogger;
  /** Name in subjects and payloads; default the host name. */
  host?: string;
  scheduler?: Scheduler;
  email?: Partial<Omit<EmailSinkOptions, "host" | "logger" | "scheduler">>;
  webhook?: Partial<Omit<WebhookSinkOptions, "host" | "logger" | "scheduler" | "index">>;
}

/** Builds the notifier from the validated `notify` config section (no sinks: a no-op notifier). */
export function createNotifier(config: Config["notify"], options: NotifierOptions): Notifier {
  const host = options.host ?? hostname();
  const common = {
    host,
    logger: options.logger,
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
  };
  const sinks: Sink[] = [];
  if (config.email) sinks.push(new EmailSink(config.email, { ...options.email, ...common }));
  config.webhooks.forEach((w, index) => {
    sinks.push(new WebhookSink(w, { ...options.webhook, ...common, index }));
  });
  return new Notifier(sinks, options.logger);
}
