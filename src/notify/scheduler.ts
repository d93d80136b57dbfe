/**
 * Time for the notifier, injectable so that tests drive batching and rate limits without
 * sleeping. The real one unrefs its timers: a pending batch never keeps the process alive.
 */

export type TimerHandle = unknown;

export interface Scheduler {
  now(): number;
  /** `keepAlive` keeps the process running until the timer fires (used for close deadlines). */
  setTimeout(fn: () => void, ms: number, keepAlive?: boolean): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout(fn, ms, keepAlive = false) {
    const t = setTimeout(fn, Math.max(0, ms));
    if (!keepAlive) t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `scheduler`, or at once when `signal` aborts. Never rejects. */
export function sleep(scheduler: Scheduler, ms: number, signal?: AbortSignal, keepAlive = false): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      scheduler.clearTimeout(handle);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const handle = scheduler.setTimeout(done, ms, keepAlive);
    signal?.addEventListener("abort", done, { once: true });
  });
}
