/**
 * Group commit for firewall operations. An operation that arrives while nothing is pending is
 * applied on the next turn of the event loop, so a lone ban costs one transaction and no
 * waiting. Operations that arrive while a transaction runs are collected and go together in
 * the next one; after a batch of several, the next waits up to `windowMs` to collect more, so
 * a burst becomes a few large transactions instead of many small ones.
 *
 * A failed batch is split in halves until the failing operations are isolated; those are
 * retried with exponential back-off while later operations carry on. Only one operation per
 * target is ever queued: a newer one takes the older one's place and settles its promise.
 */
import type { Expiry } from "./cidr-partition.js";
import type { Target } from "./guard.js";

export type Op = { kind: "add"; target: Target; expiresAt: Expiry } | { kind: "remove"; target: Target };

export interface BatcherOptions {
  /** Longest extra wait to collect a batch while bans arrive in bursts. */
  windowMs: number;
  /** Attempts per operation before it is given up (its promise rejects). */
  maxAttempts: number;
  /** First retry delay; each later one is four times longer, capped at 30 s. */
  backoffMs: number;
  /** A transaction failed; `ops` are the operations it held. */
  onFailure(err: unknown, ops: readonly Op[]): void;
  /** An operation is in the kernel. */
  onApplied(op: Op): void;
  onRetry(op: Op, attempt: number, delayMs: number): void;
  onGiveUp(op: Op, err: unknown): void;
}

interface Settler {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** One queued operation. Its own promise's settlers are inline (this runs 100,000 times a burst). */
interface Pending {
  op: Op;
  resolve: () => void;
  reject: (e: unknown) => void;
  /** Promises of operations this one replaced; null in the common case. */
  followers: Settler[] | null;
  attempts: number;
  timer: NodeJS.Timeout | null;
  state: "queued" | "flight" | "waiting" | "done";
}

export class Batcher {
  private queue: Pending[] = [];
  /** The newest operation per target that is not done yet, for coalescing. */
  private readonly latest = new Map<string, Pending>();
  private readonly waiting = new Set<Pending>();
  private scheduled: { kind: "timeout"; h: NodeJS.Timeout } | { kind: "immediate"; h: NodeJS.Immediate } | null = null;
  private running: Promise<void> | null = null;
  private lastBatchSize = 0;
  /** Work that must run with no transaction in flight (reconcile), in arrival order. */
  private exclusiveChain: Promise<unknown> = Promise.resolve();
  private exclusiveActive = 0;
  private closing = false;

  constructor(
    private readonly apply: (ops: Op[]) => Promise<void>,
    private readonly opts: BatcherOptions,
  ) {}

  /** Number of operations queued or waiting for a retry. */
  get pending(): number {
    let n = this.waiting.size;
    for (const p of this.queue) if (p.state === "queued") n++;
    return n;
  }

  submit(op: Op): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const key = op.target.text;
      const prev = this.latest.get(key);
      const p: Pending = { op, resolve, reject, followers: null, attempts: 0, timer: null, state: "queued" };
      if (prev && (prev.state === "queued" || prev.state === "waiting")) {
        // The newer operation states the wanted end result; the older one follows its fate.
        follow(p, prev);
        if (prev.timer) clearTimeout(prev.timer);
        this.waiting.delete(prev);
        prev.state = "done";
      }
      this.latest.set(key, p);
      this.queue.push(p);
      this.schedule();
    });
  }

  /** Applies everything queued or waiting for a retry now, and waits for it. */
  async commit(): Promise<void> {
    for (const w of [...this.waiting]) this.requeue(w);
    const mine = this.queue.filter((p) => p.state === "queued");
    while (mine.some((p) => p.state === "queued")) {
      if (this.running) await this.running;
      else if (this.exclusiveActive > 0) await this.exclusiveChain;
      else {
        this.cancelScheduled();
        this.running = this.runBatch();
      }
    }
    if (this.running) await this.running;
  }

  /**
   * Runs `fn` while no transaction is in flight; operations submitted meanwhile wait for it.
   * Used for reconcile and destroy, which must see and change the kernel as a whole.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.exclusiveActive++;
      try {
        while (this.running) await this.running;
        return await fn();
      } finally {
        this.exclusiveActive--;
        this.schedule();
      }
    };
    const result = this.exclusiveChain.then(run, run);
    this.exclusiveChain = result.catch(() => {});
    return result;
  }

  /** Drains: one last attempt for everything, then rejects what still fails. */
  async close(): Promise<void> {
    this.closing = true;
    await this.exclusiveChain;
    await this.commit();
  }

  private cancelScheduled(): void {
    const s = this.scheduled;
    if (!s) return;
    if (s.kind === "timeout") clearTimeout(s.h);
    else clearImmediate(s.h);
    this.scheduled = null;
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.exclusiveActive > 0 || this.queue.length === 0) return;
    const fire = () => {
      this.scheduled = null;
      if (this.running || this.exclusiveActive > 0 || this.queue.length === 0) return;
      this.running = this.runBatch();
    };
    if (this.lastBatchSize > 1 && this.opts.windowMs > 0)
      this.scheduled = { kind: "timeout", h: setTimeout(fire, this.opts.windowMs) };
    else this.scheduled = { kind: "immediate", h: setImmediate(fire) };
  }

  private async runBatch(): Promise<void> {
    const batch = this.queue.filter((p) => p.state === "queued");
    this.queue = [];
    for (const p of batch) p.state = "flight";
    this.lastBatchSize = batch.length;
    try {
      if (batch.length > 0) await this.applyOrSplit(batch, true);
    } finally {
      this.running = null;
      this.schedule();
    }
  }

  /** Applies `batch` in one transaction; on failure, halves it until the culprits are alone. */
  private async applyOrSplit(batch: Pending[], report: boolean): Promise<void> {
    try {
      await this.apply(batch.map((p) => p.op));
    } catch (err) {
      if (report || batch.length === 1)
        this.opts.onFailure(
          err,
          batch.map((p) => p.op),
        );
      if (batch.length === 1) return this.failed(batch[0]!, err);
      const mid = batch.length >> 1;
      await this.applyOrSplit(batch.slice(0, mid), false);
      await this.applyOrSplit(batch.slice(mid), false);
      return;
    }
    for (const p of batch) this.succeeded(p);
  }

  private succeeded(p: Pending): void {
    p.state = "done";
    if (this.latest.get(p.op.target.text) === p) this.latest.delete(p.op.target.text);
    p.resolve();
    if (p.followers) for (const s of p.followers) s.resolve();
    this.opts.onApplied(p.op);
  }

  private failed(p: Pending, err: unknown): void {
    p.attempts++;
    const newer = this.latest.get(p.op.target.text);
    if (newer !== p) {
      // Superseded while in flight: the newer operation decides the end state.
      p.state = "done";
      if (newer) follow(newer, p);
      else rejectAll(p, err);
      return;
    }
    if (p.attempts >= this.opts.maxAttempts || this.closing) {
      p.state = "done";
      this.latest.delete(p.op.target.text);
      this.opts.onGiveUp(p.op, err);
      rejectAll(p, err);
      return;
    }
    const delay = Math.min(this.opts.backoffMs * 4 ** (p.attempts - 1), 30_000);
    this.opts.onRetry(p.op, p.attempts, delay);
    p.state = "waiting";
    this.waiting.add(p);
    p.timer = setTimeout(() => this.requeue(p), delay);
  }

  private requeue(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    if (!this.waiting.delete(p)) return;
    p.state = "queued";
    this.queue.push(p);
    this.schedule();
  }
}

/** Makes `older`'s promises settle with `newer`. */
function follow(newer: Pending, older: Pending): void {
  const mine = newer.followers ?? [];
  mine.push({ resolve: older.resolve, reject: older.reject }, ...(older.followers ?? []));
  newer.followers = mine;
  older.followers = null;
  older.resolve = noop;
  older.reject = noop;
}

function rejectAll(p: Pending, err: unknown): void {
  p.reject(err);
  if (p.followers) for (const s of p.followers) s.reject(err);
}

function noop(): void {}
