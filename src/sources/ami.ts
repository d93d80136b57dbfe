/**
 * The Asterisk Manager Interface source: one RawRecord per AMI security event.
 *
 * Unlike the other sources, this one reconnects by itself. A dropped TCP connection (Asterisk
 * restarted, `manager reload`, a network blip) is routine for AMI, and the operator wants to
 * see how often it happens and how long we were blind, which the supervisor cannot measure.
 * So `run` keeps a capped exponential back-off loop for connection-level failures, logs in
 * again after each reconnect, and rejects only for configuration errors that no retry fixes
 * (an unreadable secret file, a malformed host, or, with `fatalAuth`, a rejected login).
 *
 * A rejected login is not retried at the connection pace: a wrong secret does not fix itself,
 * and Asterisk reports every failed manager login as an InvalidPassword security event, so
 * hammering it would flood the very log an IPS reads. It is logged as an error every time
 * and retried on a separate, long back-off, so fixing manager.conf and running
 * `manager reload` brings the source back without restarting sipwarden.
 */
import { formatDuration } from "../config/duration.js";
import type { AmiSourceConfig } from "../config/schema.js";
import { SipwardenError } from "../core/errors.js";
import { isAsteriskSecurityEvent } from "../parsers/asterisk-security-events.js";
import type { AmiMessage } from "./ami-framing.js";
import { runAmiSession } from "./ami-session.js";
import { resolveAmiSecret, validateAmiHost } from "./ami-url.js";
import type { Emit, Source, SourceStatus } from "./types.js";

/** The part of a pino logger the source uses (a pino Logger fits). */
export interface AmiLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** A capped exponential back-off, in ms. */
export interface Backoff {
  initial: number;
  max: number;
  factor: number;
  /** Random spread as a fraction of the delay (0.2 = ±20 %), so many hosts do not reconnect in step. */
  jitter: number;
}

/** Tuning that is not in the YAML; the defaults suit production, tests shorten them. */
export interface AmiSourceOptions {
  logger?: AmiLogger;
  connectTimeout?: number;
  bannerTimeout?: number;
  responseTimeout?: number;
  /** Back-off after a dropped or failed connection. Default 500 ms doubling to 30 s. */
  backoff?: Partial<Backoff>;
  /** Back-off after a rejected login. Default 60 s doubling to 30 min. */
  authBackoff?: Partial<Backoff>;
  /** A session that stayed logged in this long resets the back-off. Default 30 s. */
  stableAfter?: number;
  /** Reject `run` at the first rejected login instead of retrying (for one-shot checks). */
  fatalAuth?: boolean;
  /** Wall clock for stats; detection never uses it. */
  now?: () => number;
}

/** Counters for `sipwarden status` and the metrics exporter. */
export interface AmiStats {
  state: "idle" | "connecting" | "logging-in" | "connected" | "waiting" | "stopped";
  /** True while logged in. */
  connected: boolean;
  /** The AMI protocol version from the banner (not the Asterisk version). */
  amiVersion: string | null;
  /** Connection attempts after the first one. */
  reconnects: number;
  logins: number;
  authFailures: number;
  /** Total time not logged in since `run` started, including the current gap. */
  disconnectedMs: number;
  /** Wall-clock ms of the last security event, or null. */
  lastEventAt: number | null;
  /** Security events emitted. */
  events: number;
  /** Other AMI events seen and ignored (FullyBooted, …). */
  otherEvents: number;
  bytes: number;
  /** Connections that closed in the middle of a message; that message was dropped. */
  cutMessages: number;
  silenceWarnings: number;
  lastError: { code: string; message: string; at: number } | null;
  /** When the next connection attempt is due (while waiting). */
  nextAttemptAt: number | null;
}

const NOOP_LOGGER: AmiLogger = { info() {}, warn() {}, error() {} };
const CONNECT_BACKOFF: Backoff = { initial: 500, max: 30_000, factor: 2, jitter: 0.2 };
const AUTH_BACKOFF: Backoff = { initial: 60_000, max: 1_800_000, factor: 2, jitter: 0.1 };

/** Delay before attempt `n` (0-based) of a back-off. */
export function backoffDelay(b: Backoff, n: number, random: () => number = Math.random): number {
  const base = Math.min(b.max, b.initial * b.factor ** Math.min(n, 64));
  const spread = base * b.jitter * (random() * 2 - 1);
  return Math.max(0, Math.min(b.max, Math.round(base + spread)));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export class AmiSource implements Source {
  readonly id: string;
  private readonly cfg: AmiSourceConfig;
  private readonly log: AmiLogger;
  private readonly now: () => number;
  private readonly backoff: Backoff;
  private readonly authBackoff: Backoff;
  private readonly o: AmiSourceOptions;
  private readonly where: string;
  private readonly s: AmiStats = {
    state: "idle",
    connected: false,
    amiVersion: null,
    reconnects: 0,
    logins: 0,
    authFailures: 0,
    disconnectedMs: 0,
    lastEventAt: null,
    events: 0,
    otherEvents: 0,
    bytes: 0,
    cutMessages: 0,
    silenceWarnings: 0,
    lastError: null,
    nextAttemptAt: null,
  };
  /** Start of the current gap in coverage, or null while logged in. */
  private downSince: number | null = null;
  private running = false;

  constructor(cfg: AmiSourceConfig, options: AmiSourceOptions = {}) {
    this.cfg = cfg;
    this.o = options;
    this.log = options.logger ?? NOOP_LOGGER;
    this.now = options.now ?? Date.now;
    this.backoff = { ...CONNECT_BACKOFF, ...options.backoff };
    this.authBackoff = { ...AUTH_BACKOFF, ...options.authBackoff };
    this.where = cfg.host.includes(":") ? `[${cfg.host}]:${cfg.port}` : `${cfg.host}:${cfg.port}`;
    this.id = `ami:${cfg.name ?? this.where}`;
  }

  /** A snapshot of the counters. */
  stats(): AmiStats {
    const down = this.downSince === null ? 0 : this.now() - this.downSince;
    return { ...this.s, disconnectedMs: this.s.disconnectedMs + down };
  }

  status(): SourceStatus {
    const s = this.s;
    const head =
      s.state === "connected"
        ? `logged in to ${this.where} as ${this.cfg.username}${s.amiVersion ? ` (AMI ${s.amiVersion})` : ""}`
        : `${s.state} ${this.where}${s.lastError ? `: ${s.lastError.message}` : ""}`;
    return {
      detail: `${head}; ${s.events} events, ${s.reconnects} reconnects, ${Math.round(this.stats().disconnectedMs / 1000)} s disconnected`,
    };
  }

  async run(emit: Emit, signal: AbortSignal): Promise<void> {
    if (this.running) throw new SipwardenError("SOURCE_FAILED", `${this.id} is already running`);
    this.running = true;
    try {
      // Fatal before any traffic: configuration that no retry can fix.
      const host = validateAmiHost(this.cfg.host);
      const secret = resolveAmiSecret(this.cfg);
      // A line break would end the AMI header early (and could smuggle in another action).
      if (/[\r\n]/.test(this.cfg.username) || /[\r\n]/.test(secret))
        throw new SipwardenError(
          "CONFIG_INVALID",
          `AMI user '${this.cfg.username.trim()}': line break in the user name or secret`,
        );
      await this.loop(emit, signal, host, secret);
    } finally {
      // Close the books: the gap up to the stop counts, the time after it does not.
      this.markUp(false);
      this.markUp(true);
      this.s.connected = false;
      this.s.state = "stopped";
      this.s.nextAttemptAt = null;
      this.running = false;
    }
  }

  private markUp(up: boolean): void {
    const t = this.now();
    if (up && this.downSince !== null) {
      this.s.disconnectedMs += t - this.downSince;
      this.downSince = null;
    } else if (!up && this.downSince === null) {
      this.downSince = t;
    }
    this.s.connected = up;
  }

  private async loop(emit: Emit, signal: AbortSignal, host: string, secret: string): Promise<void> {
    let attempts = 0;
    let failures = 0;
    let authFailures = 0;
    let lastLogged = "";
    this.downSince = this.now();
    while (!signal.aborted) {
      if (attempts++ > 0) this.s.reconnects++;
      this.s.state = "connecting";
      this.s.nextAttemptAt = null;
      let loggedInAt = 0;
      let silence: NodeJS.Timeout | undefined;
      const end = await runAmiSession(
        {
          host,
          port: this.cfg.port,
          username: this.cfg.username,
          secret,
          auth: this.cfg.auth,
          connectTimeout: this.o.connectTimeout ?? 10_000,
          bannerTimeout: this.o.bannerTimeout ?? 10_000,
          responseTimeout: this.o.responseTimeout ?? 10_000,
          pingInterval: this.cfg.pingInterval,
          onConnected: () => {
            this.s.state = "logging-in";
          },
          onBanner: (v) => {
            this.s.amiVersion = v;
          },
          onLoggedIn: () => {
            loggedInAt = this.now();
            this.s.logins++;
            this.s.state = "connected";
            this.markUp(true);
            authFailures = 0;
            lastLogged = "";
            this.log.info(
              { source: this.id, amiVersion: this.s.amiVersion, reconnects: this.s.reconnects },
              `AMI ${this.where}: logged in as '${this.cfg.username}'${this.s.logins > 1 ? " again" : ""}`,
            );
            if (this.s.events === 0 && this.cfg.silenceWarning > 0) {
              silence = setTimeout(() => this.warnSilence(), this.cfg.silenceWarning);
              silence.unref();
            }
          },
          onEvent: (m) => {
            if (this.onEvent(m, emit) && silence) {
              clearTimeout(silence);
              silence = undefined;
            }
          },
          onBytes: (n) => {
            this.s.bytes += n;
          },
        },
        signal,
      );
      clearTimeout(silence);
      this.markUp(false);
      if (end.cutMidMessage) this.s.cutMessages++;
      if (signal.aborted || end.error === null) break;

      const err = end.error;
      this.s.lastError = { code: err.code, message: err.message, at: this.now() };
      // The pipeline behind emit threw: a bug to surface, not a connection problem to retry.
      if (err.code === "SOURCE_FAILED") throw err;
      let delay: number;
      if (err.code === "AMI_AUTH") {
        this.s.authFailures++;
        this.log.error({ source: this.id, code: err.code }, `AMI ${this.where}: ${err.message}`);
        if (this.o.fatalAuth) throw err;
        delay = backoffDelay(this.authBackoff, authFailures++);
      } else {
        if (loggedInAt > 0 && this.now() - loggedInAt >= (this.o.stableAfter ?? 30_000)) failures = 0;
        delay = backoffDelay(this.backoff, failures++);
        // The same failure every few seconds would bury the log; say it when it changes.
        if (err.message !== lastLogged)
          this.log.warn(
            { source: this.id, code: err.code, retryInMs: delay },
            `AMI ${this.where}: ${err.message}${end.cutMidMessage ? " (a partial event was dropped)" : ""}`,
          );
        lastLogged = err.message;
      }
      this.s.state = "waiting";
      this.s.nextAttemptAt = this.now() + delay;
      await sleep(delay, signal);
    }
  }

  /** Emits a security event; true when the message was one. */
  private onEvent(m: AmiMessage, emit: Emit): boolean {
    const name = m.head;
    if (!isAsteriskSecurityEvent(name)) {
      this.s.otherEvents++;
      return false;
    }
    const received = this.now();
    this.s.events++;
    this.s.lastEventAt = received;
    try {
      emit({ text: m.text, source: this.id, format: "ami", received });
    } catch (cause) {
      // Not a connection problem: reconnecting would replay nothing and hide the bug.
      throw new SipwardenError("SOURCE_FAILED", `the pipeline behind ${this.id} failed: ${String(cause)}`, { cause });
    }
    return true;
  }

  private warnSilence(): void {
    this.s.silenceWarnings++;
    const span = formatDuration(this.cfg.silenceWarning);
    this.log.warn(
      { source: this.id, user: this.cfg.username },
      `no security events received from ${this.where} in ${span}: does the manager user '${this.cfg.username}' have \`read = security\`?`,
    );
  }
}
