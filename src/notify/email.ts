/**
 * E-mail over SMTP (nodemailer). Bans are collected for `batch` and sent as one mail; at most
 * `maxPerHour` mails go out in any hour, and what arrives while the limit is reached is folded
 * into the next allowed mail, so a flood of 41,000 bans is a handful of mails that still count
 * every address. Start/stop notices go out at once (within the limit); a digest, when
 * configured, summarises each period.
 *
 * The one exception to the hourly limit is the final mail on `close()`: it carries the stop
 * notice and whatever was still pending, which would otherwise never be told.
 */
import nodemailer from "nodemailer";
import type { EmailConfig } from "../config/schema.js";
import { type LifecycleNote, type MailContent, mailSubject, mailText } from "./format.js";
import { WindowLimit } from "./rate-limit.js";
import { realScheduler, type Scheduler, type TimerHandle } from "./scheduler.js";
import { BanTally } from "./tally.js";
import type { BanNotice, LifecycleInfo, LifecyclePhase, NotifyLogger, Sink, SinkStats, UnbanNotice } from "./types.js";

/** What the sink needs from a nodemailer transporter (lets a caller pass a sendmail one). */
export interface MailTransport {
  sendMail(mail: { from: string; to: string[]; subject: string; text: string; signal?: AbortSignal }): Promise<unknown>;
  close(): void;
}

export interface EmailSinkOptions {
  /** The name used in subjects (`[sipwarden] pbx1: …`). */
  host: string;
  logger: NotifyLogger;
  scheduler?: Scheduler;
  /** Addresses listed in a mail; the rest is counted in "and N more". Default 50. */
  listLimit?: number;
  /** Addresses kept in detail per mail while collecting (memory bound). Default 1000. */
  holdLimit?: number;
  /** Sends of one mail's content before it is given up. Default 3. */
  maxAttempts?: number;
  /** SMTP connect/greeting timeout; the socket timeout is three times this. Default 10 s. */
  smtpTimeoutMs?: number;
  /** Replaces the SMTP transport built from the config. */
  transport?: MailTransport;
}

export class EmailSink implements Sink {
  readonly name = "email";
  private readonly sched: Scheduler;
  private readonly transport: MailTransport;
  private readonly limit: WindowLimit;
  private readonly listLimit: number;
  private readonly holdLimit: number;
  private readonly maxAttempts: number;
  private readonly abort = new AbortController();
  private readonly counters = { sent: 0, failed: 0, retried: 0, dropped: 0 };

  private batch: BanTally;
  private notes: LifecycleNote[] = [];
  private digest: { tally: BanTally; since: number } | undefined;
  private digestDue = false;
  private timer: TimerHandle | undefined;
  private timerDue = 0;
  private digestTimer: TimerHandle | undefined;
  private inFlight: Promise<void> | undefined;
  private again = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: EmailConfig,
    private readonly options: EmailSinkOptions,
  ) {
    this.sched = options.scheduler ?? realScheduler;
    this.limit = new WindowLimit(config.maxPerHour);
    this.listLimit = options.listLimit ?? 50;
    this.holdLimit = Math.max(options.holdLimit ?? 1000, this.listLimit);
    this.maxAttempts = options.maxAttempts ?? 3;
    this.batch = new BanTally(this.holdLimit);
    const t = options.smtpTimeoutMs ?? 10_000;
    this.transport =
      options.transport ??
      nodemailer.createTransport({
        host: config.host,
        port: config.port,
        secure: config.secure,
        ...(config.user === undefined ? {} : { auth: { user: config.user, pass: config.password ?? "" } }),
        connectionTimeout: t,
        greetingTimeout: t,
        socketTimeout: 3 * t,
      });
    if (config.digest !== undefined && config.digest > 0) {
      this.digest = { tally: new BanTally(this.holdLimit), since: this.sched.now() };
      this.armDigest(config.digest);
    }
  }

  banned(n: BanNotice): void {
    if (this.closing) return;
    this.batch.addBan(n);
    this.digest?.tally.addBan(n);
    this.flushIn(this.config.batch);
  }

  unbanned(_n: UnbanNotice): void {
    if (this.closing) return;
    // Lifted bans ride along with the next mail or digest; alone they are not worth a mail.
    this.batch.unbans++;
    if (this.digest) this.digest.tally.unbans++;
  }

  lifecycle(phase: LifecyclePhase, info: LifecycleInfo): void {
    if (this.closing || !this.config.onStartStop) return;
    this.notes.push({ phase, info, at: info.at ?? this.sched.now() });
    this.flushIn(0);
  }

  stats(): SinkStats {
    return { ...this.counters, pending: this.batch.total };
  }

  close(budgetMs: number): Promise<void> {
    this.closing ??= this.shutdown(budgetMs);
    return this.closing;
  }

  private async shutdown(budgetMs: number): Promise<void> {
    this.cancelTimer();
    if (this.digestTimer !== undefined) this.sched.clearTimeout(this.digestTimer);
    const deadline = this.sched.setTimeout(() => this.abort.abort(), budgetMs, true);
    const aborted = new Promise<void>((resolve) => {
      if (this.abort.signal.aborted) resolve();
      else this.abort.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    try {
      if (this.inFlight) await Promise.race([this.inFlight, aborted]);
      if (this.hasNews() && !this.abort.signal.aborted) {
        this.flush(true);
        if (this.inFlight) await Promise.race([this.inFlight, aborted]);
      }
      if (this.batch.total > 0) {
        this.counters.dropped += this.batch.total;
        this.options.logger.error(
          { sink: this.name, lost: this.batch.total },
          "ban notices not mailed before shutdown",
        );
      }
    } finally {
      this.sched.clearTimeout(deadline);
      this.transport.close();
    }
  }

  private hasNews(): boolean {
    return this.batch.total > 0 || this.notes.length > 0 || this.digestDue;
  }

  private armDigest(every: number): void {
    this.digestTimer = this.sched.setTimeout(() => {
      this.digestDue = true;
      this.armDigest(every);
      this.flushIn(0);
    }, every);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.sched.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Flushes in `ms` unless a flush is already due sooner. */
  private flushIn(ms: number): void {
    if (this.closing) return;
    const due = this.sched.now() + ms;
    if (this.timer !== undefined) {
      if (this.timerDue <= due) return;
      this.cancelTimer();
    }
    this.timerDue = due;
    this.timer = this.sched.setTimeout(() => {
      this.timer = undefined;
      this.flush(false);
    }, ms);
  }

  private flush(force: boolean): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    if (!this.hasNews()) return;
    const now = this.sched.now();
    if (!force && !this.limit.allows(now)) {
      // Over the hourly limit: keep collecting and send everything in the next allowed mail.
      this.flushIn(this.limit.nextAt(now) - now);
      return;
    }
    const content = this.take(now);
    this.inFlight = this.deliver(content, now).finally(() => {
      this.inFlight = undefined;
      if (this.again && !this.closing) {
        this.again = false;
        this.flush(false);
      }
    });
  }

  private take(now: number): MailContent & { batch: BanTally } {
    const content = {
      host: this.options.host,
      lifecycle: this.notes,
      batch: this.batch,
      ...(this.digestDue && this.digest ? { digest: { ...this.digest, until: now } } : {}),
    };
    this.notes = [];
    this.batch = new BanTally(this.holdLimit);
    if (this.digestDue && this.digest) {
      this.digest = { tally: new BanTally(this.holdLimit), since: now };
      this.digestDue = false;
    }
    return content;
  }

  private async deliver(content: MailContent & { batch: BanTally }, now: number): Promise<void> {
    const subject = mailSubject(content);
    try {
      await this.transport.sendMail({
        from: this.config.from,
        to: this.config.to,
        subject,
        text: mailText(content, this.listLimit),
        signal: this.abort.signal,
      });
      this.limit.note(now);
      this.counters.sent++;
      this.options.logger.info({ sink: this.name, subject }, "notification mail sent");
    } catch (e) {
      this.requeue(content, e);
    }
  }

  /** Puts a failed mail's content back in front of what arrived since, or gives it up. */
  private requeue(content: MailContent & { batch: BanTally }, e: unknown): void {
    const err = e instanceof Error ? e.message : String(e);
    const attempts = content.batch.attempts + 1;
    if (attempts >= this.maxAttempts || this.abort.signal.aborted) {
      this.counters.failed++;
      this.counters.dropped += content.batch.total;
      this.options.logger.error(
        { sink: this.name, err, attempts, lost: content.batch.total },
        "notification mail given up",
      );
      return;
    }
    this.counters.retried++;
    this.options.logger.warn({ sink: this.name, err, attempts }, "notification mail failed; will retry");
    content.batch.merge(this.batch);
    content.batch.attempts = attempts;
    this.batch = content.batch;
    this.notes = [...content.lifecycle, ...this.notes];
    if (content.digest && this.digest) {
      content.digest.tally.merge(this.digest.tally);
      this.digest = { tally: content.digest.tally, since: content.digest.since };
      this.digestDue = true;
    }
    this.flushIn(this.config.batch);
  }
}
