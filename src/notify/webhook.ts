/**
 * Webhook: JSON POSTs, batched per `batch` window. Network errors, timeouts, 5xx and 429 are
 * retried with exponential back-off (429/503 honour Retry-After, capped); other statuses are
 * not retried. `slack` format sends `{ "text": … }` for Slack-compatible incoming webhooks.
 *
 * Payloads (`format: json`), times ISO 8601, durations in seconds (null = permanent):
 *   { "type": "ban", "host", "time", "bans": [{ target, rule, reason, count, duration, first, last }], "dropped"? }
 *   { "type": "unban", "host", "time", "unbans": [{ target, by, reason, at }] }
 *   { "type": "start" | "stop", "host", "time", "version"?, "activeBans"?, "reason"? }
 * `dropped` counts ban notices lost to queue overflow since the previous delivered ban payload.
 */

import type { WebhookConfig } from "../config/schema.js";
import { SipwardenError } from "../core/errors.js";
import { type LifecycleNote, slackBans, slackLifecycle, slackUnbans } from "./format.js";
import { BoundedQueue } from "./queue.js";
import { realScheduler, type Scheduler, sleep, type TimerHandle } from "./scheduler.js";
import type { BanNotice, LifecycleInfo, LifecyclePhase, NotifyLogger, Sink, SinkStats, UnbanNotice } from "./types.js";

type Item =
  | { readonly type: "ban"; readonly n: BanNotice }
  | { readonly type: "unban"; readonly n: UnbanNotice & { at: number } }
  | { readonly type: "lifecycle"; readonly n: LifecycleNote };

export interface WebhookSinkOptions {
  host: string;
  logger: NotifyLogger;
  scheduler?: Scheduler;
  /** Notices held while the receiver is slow; the oldest are dropped beyond. Default 10,000. */
  queueLimit?: number;
  /** Notices per POST. Default 500. */
  maxPerRequest?: number;
  /** First back-off delay; doubles per attempt. Default 1 s. */
  retryBaseMs?: number;
  /** Longest back-off or Retry-After honoured. Default 60 s. */
  retryMaxMs?: number;
  /** Distinguishes several webhooks to the same host in `name`. */
  index?: number;
}

/** Delay asked for by a Retry-After header (seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class WebhookSink implements Sink {
  readonly name: string;
  private readonly sched: Scheduler;
  private readonly queue: BoundedQueue<Item>;
  private readonly maxPerRequest: number;
  private readonly retryBase: number;
  private readonly retryMax: number;
  private readonly abort = new AbortController();
  private readonly counters = { sent: 0, failed: 0, retried: 0, dropped: 0 };
  /** Ban notices dropped since the last delivered ban payload (reported in it). */
  private unreportedDrops = 0;
  private timer: TimerHandle | undefined;
  private timerDue = 0;
  private pumping: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: WebhookConfig,
    private readonly options: WebhookSinkOptions,
  ) {
    let url: URL;
    try {
      url = new URL(config.url);
    } catch (e) {
      throw new SipwardenError("CONFIG_INVALID", "webhook url is not a URL", {
        path: `notify.webhooks[${options.index ?? 0}].url`,
        cause: e,
      });
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new SipwardenError("CONFIG_INVALID", `webhook url must be http or https, not ${url.protocol}`, {
        path: `notify.webhooks[${options.index ?? 0}].url`,
      });
    }
    // The host only: the path of a Slack-style webhook is its secret.
    this.name = `webhook${options.index ? `[${options.index}]` : ""}:${url.host}`;
    this.sched = options.scheduler ?? realScheduler;
    this.queue = new BoundedQueue(options.queueLimit ?? 10_000);
    this.maxPerRequest = options.maxPerRequest ?? 500;
    this.retryBase = options.retryBaseMs ?? 1000;
    this.retryMax = options.retryMaxMs ?? 60_000;
  }

  banned(n: BanNotice): void {
    this.push({ type: "ban", n });
  }

  unbanned(n: UnbanNotice): void {
    this.push({ type: "unban", n: { ...n, at: n.at ?? this.sched.now() } });
  }

  lifecycle(phase: LifecyclePhase, info: LifecycleInfo): void {
    this.push({ type: "lifecycle", n: { phase, info, at: info.at ?? this.sched.now() } }, 0);
  }

  stats(): SinkStats {
    return { ...this.counters, pending: this.queue.length };
  }

  close(budgetMs: number): Promise<void> {
    this.closing ??= this.shutdown(budgetMs);
    return this.closing;
  }

  private push(item: Item, delay = this.config.batch): void {
    if (this.closing) return;
    const lost = this.queue.push(item);
    if (lost) {
      this.counters.dropped++;
      if (lost.type === "ban") this.unreportedDrops++;
    }
    this.flushIn(delay);
  }

  private flushIn(ms: number): void {
    if (this.pumping) return; // the running pump takes everything queued
    const due = this.sched.now() + ms;
    if (this.timer !== undefined) {
      if (this.timerDue <= due) return;
      this.sched.clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = this.sched.setTimeout(() => {
      this.timer = undefined;
      this.startPump();
    }, ms);
  }

  private startPump(): void {
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      // A notice pushed between the pump's last check and here would otherwise wait for the next one.
      if (this.queue.length > 0 && !this.closing) this.flushIn(this.config.batch);
    });
  }

  /** Delivers until the queue is empty; what arrives meanwhile goes in the next POST. */
  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.abort.signal.aborted) {
      const group = this.takeGroup();
      const { body, reportedDrops } = this.payload(group);
      if (await this.post(body)) this.unreportedDrops -= reportedDrops;
      else this.counters.dropped += group.length;
    }
  }

  /** Consecutive items of one type, at most maxPerRequest (one lifecycle notice per POST). */
  private takeGroup(): Item[] {
    const first = this.queue.shift()!;
    const group = [first];
    if (first.type === "lifecycle") return group;
    while (group.length < this.maxPerRequest && this.queue.peek()?.type === first.type) group.push(this.queue.shift()!);
    return group;
  }

  private payload(group: Item[]): { body: object; reportedDrops: number } {
    const wrap = (body: object, reportedDrops = 0) => ({ body, reportedDrops });
    const host = this.options.host;
    const time = new Date(this.sched.now()).toISOString();
    const slack = this.config.format === "slack";
    const first = group[0]!;
    if (first.type === "lifecycle") {
      const l = first.n;
      if (slack) return wrap({ text: slackLifecycle(host, l) });
      return wrap({ type: l.phase, host, time: new Date(l.at).toISOString(), ...withoutAt(l.info) });
    }
    if (first.type === "unban") {
      const unbans = group.map((i) => i.n as UnbanNotice & { at: number });
      if (slack) return wrap({ text: slackUnbans(host, unbans) });
      return wrap({
        type: "unban",
        host,
        time,
        unbans: unbans.map((u) => ({
          target: u.target,
          by: u.by,
          reason: u.reason ?? null,
          at: new Date(u.at).toISOString(),
        })),
      });
    }
    const bans = group.map((i) => i.n as BanNotice);
    const dropped = this.unreportedDrops;
    if (slack) return wrap({ text: slackBans(host, bans, dropped) }, dropped);
    return wrap(
      {
        type: "ban",
        host,
        time,
        bans: bans.map((b) => ({
          target: b.target,
          rule: b.rule,
          reason: b.reason,
          count: b.count,
          duration: b.duration === null ? null : Math.round(b.duration / 1000),
          first: new Date(b.first).toISOString(),
          last: new Date(b.last).toISOString(),
        })),
        ...(dropped > 0 ? { dropped } : {}),
      },
      dropped,
    );
  }

  /** One delivery with its retries. True when the receiver accepted it. */
  private async post(payload: object): Promise<boolean> {
    const body = JSON.stringify(payload);
    const log = this.options.logger;
    for (let attempt = 0; ; attempt++) {
      let wait: number | undefined;
      let why: string;
      try {
        const res = await fetch(this.config.url, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": "sipwarden", ...this.config.headers },
          body,
          // Custom headers (tokens) must not follow a redirect to another host.
          redirect: "error",
          signal: AbortSignal.any([AbortSignal.timeout(this.config.timeout), this.abort.signal]),
        });
        // Drain the body so the connection can be reused; its content does not matter.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.counters.sent++;
          return true;
        }
        why = `HTTP ${res.status}`;
        if (res.status !== 429 && res.status < 500) {
          this.counters.failed++;
          log.error({ sink: this.name, status: res.status }, "webhook rejected the notification; not retried");
          return false;
        }
        wait = retryAfterMs(res.headers.get("retry-after"), Date.now());
      } catch (e) {
        why = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      }
      if (attempt >= this.config.retries || this.abort.signal.aborted) {
        this.counters.failed++;
        log.error({ sink: this.name, err: why, attempts: attempt + 1 }, "webhook delivery given up");
        return false;
      }
      this.counters.retried++;
      const backoff = this.retryBase * 2 ** attempt;
      // Equal jitter: spread retries of several daemons without ever retrying at once.
      const delay = Math.min(this.retryMax, wait ?? backoff / 2 + (Math.random() * backoff) / 2);
      log.warn({ sink: this.name, err: why, attempt: attempt + 1, delayMs: Math.round(delay) }, "webhook retry");
      await sleep(this.sched, delay, this.abort.signal);
    }
  }

  private async shutdown(budgetMs: number): Promise<void> {
    if (this.timer !== undefined) this.sched.clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = this.sched.setTimeout(() => this.abort.abort(), budgetMs, true);
    try {
      while (!this.abort.signal.aborted) {
        if (!this.pumping && this.queue.length > 0) this.startPump();
        if (!this.pumping) break;
        await this.pumping;
      }
    } finally {
      this.sched.clearTimeout(deadline);
      if (this.queue.length > 0) {
        this.counters.dropped += this.queue.length;
        this.options.logger.error({ sink: this.name, lost: this.queue.length }, "webhook notices lost at shutdown");
        this.queue.drain();
      }
    }
  }
}

function withoutAt(info: LifecycleInfo): Omit<LifecycleInfo, "at"> {
  const { at: _at, ...rest } = info;
  return rest;
}
