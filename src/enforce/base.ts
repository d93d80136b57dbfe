/**
 * What every backend shares: address checks, the batcher, the conntrack flush after each ban,
 * counters and hooks. A backend supplies only its kernel I/O.
 */
import { isSipwardenError, SipwardenError } from "../core/errors.js";
import { Batcher, type Op } from "./batcher.js";
import type { Expiry } from "./cidr-partition.js";
import { ConntrackFlusher } from "./conntrack.js";
import { AddressGuard, parseTarget, type Target } from "./guard.js";
import { HostAddresses } from "./host-addresses.js";
import {
  type BackendName,
  type BanEntry,
  type CommandInfo,
  type Enforcer,
  type EnforcerHooks,
  type EnforcerStats,
  type EnforceSettings,
  emptyStats,
  type ReconcileResult,
} from "./types.js";

export interface BackendOptions {
  settings: EnforceSettings;
  /** Networks never to ban (config `policy.allowlist`). */
  allowlist?: Iterable<string>;
  hooks?: EnforcerHooks;
  /** Work inside this network namespace (tests, benchmarks). */
  netns?: string;
  /** Overrides the lookup of the host's own addresses. */
  hostAddresses?: () => readonly string[];
  /** Attempts per operation (default 5) and the first back-off delay (default 100 ms). */
  maxAttempts?: number;
  backoffMs?: number;
  now?: () => number;
  /** How far a kernel element's remaining time may differ from the store's and still be kept. */
  toleranceMs?: number;
}

/** A checked store entry, ready to diff against the kernel. */
export interface Desired {
  target: Target;
  expiresAt: Expiry;
}

export abstract class BaseEnforcer implements Enforcer {
  abstract readonly backend: BackendName;
  protected readonly settings: EnforceSettings;
  protected readonly hooks: EnforcerHooks;
  protected readonly now: () => number;
  protected readonly counters: EnforcerStats = emptyStats();
  protected readonly guard: AddressGuard;
  private readonly hostAddrs: HostAddresses | null;
  protected readonly batcher: Batcher;
  protected readonly conntrack: ConntrackFlusher | null;
  private readonly toleranceMs: number;
  private started = false;
  private closed = false;

  constructor(protected readonly opts: BackendOptions) {
    this.settings = opts.settings;
    this.hooks = opts.hooks ?? {};
    this.now = opts.now ?? Date.now;
    this.toleranceMs = opts.toleranceMs ?? 2000;
    this.hostAddrs = opts.hostAddresses ? null : new HostAddresses({ netns: opts.netns });
    this.guard = new AddressGuard({
      allowlist: opts.allowlist,
      hostAddresses: opts.hostAddresses ?? this.hostAddrs!.get,
    });
    this.conntrack = this.makeConntrack();
    this.batcher = new Batcher((ops) => this.applyOps(ops), {
      windowMs: this.settings.batchWindow,
      maxAttempts: opts.maxAttempts ?? 5,
      backoffMs: opts.backoffMs ?? 100,
      onFailure: (err) => this.report(err),
      onApplied: (op) => this.applied(op),
      onRetry: () => this.counters.retries++,
      onGiveUp: (op, err) => {
        this.counters.dropped++;
        this.safe(() => this.hooks.onWarn?.(`giving up on ${op.kind} ${op.target.text}: ${(err as Error).message}`));
      },
    });
  }

  /** Conntrack flushing, or null when it is off (the dry-run backend only logs it). */
  protected makeConntrack(): ConntrackFlusher | null {
    if (!this.settings.conntrackFlush) return null;
    return new ConntrackFlusher({
      netns: this.opts.netns,
      onError: (e) => {
        this.counters.conntrackFailures++;
        this.safe(() => this.hooks.onError?.(e));
      },
      onWarn: (m) => this.safe(() => this.hooks.onWarn?.(m)),
      onFlushed: (_t, deleted) => {
        this.counters.conntrackFlushes++;
        if (deleted !== null) this.counters.conntrackDeleted += deleted;
      },
    });
  }

  async start(): Promise<void> {
    if (this.closed) throw new SipwardenError("ENFORCER_UNAVAILABLE", "enforcer is closed");
    await this.hostAddrs?.refresh();
    await this.setup();
    this.started = true;
  }

  add(ban: BanEntry): Promise<void> {
    try {
      this.assertReady();
      const target = this.guard.check(ban.target);
      const expiresAt = ban.expiresAt;
      if (expiresAt !== null && !Number.isFinite(expiresAt))
        throw new SipwardenError("USAGE", `bad expiry for ${target.text}: ${expiresAt}`);
      return this.batcher.submit({ kind: "add", target, expiresAt });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  remove(target: string): Promise<void> {
    try {
      this.assertReady();
      // No refusal check: lifting a ban is always allowed, even one on a now-protected address.
      return this.batcher.submit({ kind: "remove", target: parseTarget(target) });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  commit(): Promise<void> {
    return this.batcher.commit();
  }

  reconcile(active: readonly BanEntry[]): Promise<ReconcileResult> {
    try {
      this.assertReady();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.batcher.exclusive(() => this.doReconcile(() => this.prepare(active)));
  }

  list(): Promise<BanEntry[]> {
    return this.doList();
  }

  /**
   * Resolves once nothing is queued and every conntrack flush has run (for a CLI about to
   * exit, a test, or a benchmark that wants an idle host between bans).
   */
  async settled(): Promise<void> {
    await this.batcher.commit();
    await this.conntrack?.drain();
  }

  stats(): EnforcerStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.batcher.close();
    await this.conntrack?.drain();
    await this.shutdown();
  }

  async destroy(): Promise<void> {
    await this.batcher.exclusive(() => this.doDestroy());
  }

  /** Creates or verifies the kernel objects. */
  protected abstract setup(): Promise<void>;
  /** Applies a batch atomically, or throws having changed nothing that a retry would not redo. */
  protected abstract applyOps(ops: Op[]): Promise<void>;
  /**
   * `desired` checks the store's list; a backend calls it once it has started listing the
   * kernel, so that the checking (CPU) overlaps the listing (another process).
   */
  protected abstract doReconcile(desired: () => Map<string, Desired>): Promise<ReconcileResult>;
  protected abstract doList(): Promise<BanEntry[]>;
  protected abstract doDestroy(): Promise<void>;
  /** Stops helper processes. */
  protected abstract shutdown(): Promise<void>;

  /** Whether a kernel element's expiry is close enough to the store's to leave it alone. */
  protected sameExpiry(kernel: Expiry, wanted: Expiry, now: number): boolean {
    if (kernel === null || wanted === null) return kernel === wanted;
    const tolerance = Math.max(this.toleranceMs, (wanted - now) * 0.001);
    return Math.abs(kernel - wanted) <= tolerance;
  }

  /** Records a command for counters and the `onCommand` hook. */
  protected noteCommand(program: string, what: string, ms: number, ok: boolean): void {
    this.counters.commands++;
    if (!ok) this.counters.failures++;
    const info: CommandInfo = { program, what, ms, ok };
    this.safe(() => this.hooks.onCommand?.(info));
  }

  protected report(err: unknown): void {
    const e = isSipwardenError(err)
      ? err
      : new SipwardenError("ENFORCER_FAILED", (err as Error)?.message ?? String(err), { cause: err });
    this.safe(() => this.hooks.onError?.(e));
  }

  protected get isStarted(): boolean {
    return this.started;
  }

  private applied(op: Op): void {
    if (op.kind === "add") {
      this.counters.added++;
      this.conntrack?.flush(op.target);
    } else this.counters.removed++;
  }

  /** Checks and de-duplicates the store's list; refused or expired entries are skipped. */
  private prepare(active: readonly BanEntry[]): Map<string, Desired> {
    const now = this.now();
    const out = new Map<string, Desired>();
    for (const b of active) {
      let target: Target;
      try {
        target = this.guard.check(b.target);
      } catch (e) {
        this.safe(() => this.hooks.onWarn?.(`reconcile skips ${JSON.stringify(b.target)}: ${(e as Error).message}`));
        continue;
      }
      if (b.expiresAt !== null && !(b.expiresAt > now)) continue;
      const prev = out.get(target.text);
      const expiresAt =
        prev === undefined
          ? b.expiresAt
          : prev.expiresAt === null || b.expiresAt === null
            ? null
            : Math.max(prev.expiresAt, b.expiresAt);
      out.set(target.text, { target, expiresAt });
    }
    return out;
  }

  private assertReady(): void {
    if (this.closed) throw new SipwardenError("ENFORCER_UNAVAILABLE", "enforcer is closed");
    if (!this.started) throw new SipwardenError("ENFORCER_UNAVAILABLE", "enforcer not started: call start() first");
  }

  /** Hooks belong to the caller; an exception in one must not break enforcement. */
  protected safe(fn: () => void): void {
    try {
      fn();
    } catch {
      // deliberately ignored
    }
  }
}
