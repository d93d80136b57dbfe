/**
 * Runs every source concurrently and keeps it running: when a source's `run` rejects, or
 * returns although nobody asked it to stop, the supervisor restarts it after an exponential
 * back-off and counts the restart. Sources never retry by themselves, and one failing source
 * never stops the others.
 */
import type { Emit, Source } from "../sources/types.js";

/**
 * The logging calls sipwarden makes, a structural subset of pino's `Logger` (so a pino logger
 * or a child of one can be passed as is).
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const NULL_LOGGER: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Timer functions, injectable so tests can drive back-off with a manual clock. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_TIMERS: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface BackoffOptions {
  /** First delay after a failure. */
  readonly initialMs: number;
  /** Upper bound of the delay. */
  readonly maxMs: number;
  /** Growth per consecutive failure. */
  readonly factor: number;
  /** A run that lasted this long counts as healthy: the next failure starts again at `initialMs`. */
  readonly resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 30_000, factor: 2, resetAfterMs: 60_000 };

export type SourceState = "running" | "backing-off" | "stopped";

/** What `sipwarden status` and the metrics show for one source. */
export interface SourceHealth {
  readonly id: string;
  readonly state: SourceState;
  /** Restarts since the supervisor started (each run after the first one). */
  readonly restarts: number;
  /** Failures in a row without a healthy run in between; drives the back-off. */
  readonly consecutiveFailures: number;
  readonly lastError?: string;
  /** Epoch ms of the last failure. */
  readonly lastErrorAt?: number;
  /** Epoch ms of the next start while backing off. */
  readonly nextStartAt?: number;
  /** The source's own status detail, when it has one. */
  readonly detail?: string;
}

export interface SupervisorOptions {
  readonly logger?: Logger;
  readonly timers?: Timers;
  readonly backoff?: Partial<BackoffOptions>;
}

interface Slot {
  readonly source: Source;
  state: SourceState;
  restarts: number;
  failures: number;
  lastError?: string;
  lastErrorAt?: number;
  nextStartAt?: number;
  controller?: AbortController;
  running?: Promise<void>;
  timer?: unknown;
}

/** The delay before restart number `failures` (1-based) of a source. */
export function backoffDelay(failures: number, b: BackoffOptions): number {
  const exp = Math.max(0, failures - 1);
  return Math.min(b.maxMs, b.initialMs * b.factor ** exp);
}

export class Supervisor {
  readonly #emit: Emit;
  readonly #logger: Logger;
  readonly #timers: Timers;
  readonly #backoff: BackoffOptions;
  readonly #slots = new Map<string, Slot>();
  #started = false;
  #stopping: Promise<void> | null = null;

  constructor(sources: readonly Source[], emit: Emit, opts: SupervisorOptions = {}) {
    this.#emit = emit;
    this.#logger = opts.logger ?? NULL_LOGGER;
    this.#timers = opts.timers ?? SYSTEM_TIMERS;
    this.#backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    for (const s of sources) this.add(s);
  }

  /** Add a source; it starts at once when the supervisor is already running. */
  add(source: Source): void {
    if (this.#stopping) throw new Error("supervisor is stopped");
    if (this.#slots.has(source.id)) throw new Error(`duplicate source id ${source.id}`);
    const slot: Slot = { source, state: "stopped", restarts: 0, failures: 0 };
    this.#slots.set(source.id, slot);
    if (this.#started) this.#launch(slot);
  }

  /** Start every source. Calling it again does nothing. */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    for (const slot of this.#slots.values()) this.#launch(slot);
  }

  /** Abort every source and wait until each `run` has settled. Safe to call more than once. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    const waits: Promise<void>[] = [];
    for (const slot of this.#slots.values()) {
      if (slot.timer !== undefined) this.#timers.clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.nextStartAt = undefined;
      slot.controller?.abort();
      if (slot.running) waits.push(slot.running);
      else slot.state = "stopped";
    }
    this.#stopping = Promise.all(waits).then(() => undefined);
    return this.#stopping;
  }

  health(): SourceHealth[] {
    return [...this.#slots.values()].map((s) => {
      let detail: string | undefined;
      try {
        detail = s.source.status?.().detail;
      } catch {
        detail = undefined;
      }
      return {
        id: s.source.id,
        state: s.state,
        restarts: s.restarts,
        consecutiveFailures: s.failures,
        ...(s.lastError !== undefined && { lastError: s.lastError }),
        ...(s.lastErrorAt !== undefined && { lastErrorAt: s.lastErrorAt }),
        ...(s.nextStartAt !== undefined && { nextStartAt: s.nextStartAt }),
        ...(detail !== undefined && { detail }),
      };
    });
  }

  /** Restart count of one source (0 for an unknown id). */
  restarts(id: string): number {
    return this.#slots.get(id)?.restarts ?? 0;
  }

  #launch(slot: Slot): void {
    const controller = new AbortController();
    const startedAt = this.#timers.now();
    slot.controller = controller;
    slot.state = "running";
    slot.timer = undefined;
    slot.nextStartAt = undefined;
    // `then` first so that a synchronous throw in `run` is caught like a rejection; a stop that
    // came before the call means the source is never started at all.
    const run = Promise.resolve().then(() =>
      controller.signal.aborted ? undefined : slot.source.run(this.#emit, controller.signal),
    );
    slot.running = run.then(
      () => this.#ended(slot, controller, startedAt, null),
      (err: unknown) => this.#ended(slot, controller, startedAt, err ?? new Error("source failed")),
    );
  }

  #ended(slot: Slot, controller: AbortController, startedAt: number, err: unknown): void {
    slot.running = undefined;
    slot.controller = undefined;
    if (controller.signal.aborted || this.#stopping) {
      slot.state = "stopped";
      return;
    }
    const now = this.#timers.now();
    if (now - startedAt >= this.#backoff.resetAfterMs) slot.failures = 0;
    slot.failures++;
    slot.lastError = err === null ? "run returned without being stopped" : describeError(err);
    slot.lastErrorAt = now;
    const delay = backoffDelay(slot.failures, this.#backoff);
    slot.state = "backing-off";
    slot.nextStartAt = now + delay;
    this.#logger.warn(
      { source: slot.source.id, err: slot.lastError, failures: slot.failures, retryInMs: delay },
      "source failed; restarting after back-off",
    );
    slot.timer = this.#timers.setTimeout(() => {
      if (this.#stopping) return;
      slot.restarts++;
      this.#logger.info({ source: slot.source.id, restarts: slot.restarts }, "source restarting");
      this.#launch(slot);
    }, delay);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
