/** Schedulers for notifier tests: a manual clock, and real timers that run faster and record delays. */
import type { Scheduler, TimerHandle } from "../../src/notify/scheduler.js";

interface Pending {
  id: number;
  due: number;
  fn: () => void;
}

/** Time stands still until `advance`; due timers then run in order, synchronously. */
export class ManualScheduler implements Scheduler {
  private t: number;
  private seq = 0;
  private timers: Pending[] = [];

  constructor(start = Date.UTC(2024, 4, 1, 12, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const p = { id: ++this.seq, due: this.t + Math.max(0, ms), fn };
    this.timers.push(p);
    return p.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((p) => p.id !== handle);
  }

  /** Timers still waiting (for asserting that close() left none behind). */
  get pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.due - b.due || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.due > end) break;
      this.timers.shift();
      this.t = next.due;
      next.fn();
    }
    this.t = end;
  }
}

/** Real timers, `divisor` times faster, that remember every delay asked for. */
export class FastScheduler implements Scheduler {
  readonly delays: number[] = [];
  private readonly live = new Set<NodeJS.Timeout>();

  constructor(private readonly divisor = 100) {}

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number, keepAlive = false): TimerHandle {
    this.delays.push(ms);
    const t = setTimeout(
      () => {
        this.live.delete(t);
        fn();
      },
      Math.max(0, ms / this.divisor),
    );
    if (!keepAlive) t.unref();
    this.live.add(t);
    return t;
  }

  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
    this.live.delete(handle as NodeJS.Timeout);
  }

  get pending(): number {
    return this.live.size;
  }
}
