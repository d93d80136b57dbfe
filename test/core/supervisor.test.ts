import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SipwardenError } from "../../src/core/errors.js";
import { backoffDelay, DEFAULT_BACKOFF, type Logger, Supervisor, type Timers } from "../../src/core/supervisor.js";
import type { Emit, RawRecord, Source } from "../../src/sources/types.js";

/** Timers driven by hand: `advance(ms)` fires what is due, in order. */
class ManualTimers implements Timers {
  t = 0;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#due.delete(h as number);
  }
  pending(): number[] {
    return [...this.#due.values()].map((d) => d.at - this.t).sort((a, b) => a - b);
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.#due.entries()].filter(([, d]) => d.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.#due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Let promise callbacks run (several hops: run → then → supervisor bookkeeping). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A source scripted per run: each run does what the next script entry says. */
class ScriptedSource implements Source {
  runs = 0;
  active = 0;
  constructor(
    readonly id: string,
    readonly script: ("fail" | "return" | "hang" | "throw-sync")[],
  ) {}
  run(emit: Emit, signal: AbortSignal): Promise<void> {
    const step = this.script[Math.min(this.runs, this.script.length - 1)]!;
    this.runs++;
    if (step === "throw-sync") throw new Error(`sync ${this.runs}`);
    emit({ text: `${this.id} run ${this.runs}`, source: this.id, format: "auto", received: 0 });
    if (step === "fail") return Promise.reject(new SipwardenError("SOURCE_FAILED", `boom ${this.runs}`));
    if (step === "return") return Promise.resolve();
    this.active++;
    return new Promise((resolve) =>
      signal.addEventListener(
        "abort",
        () => {
          this.active--;
          resolve();
        },
        { once: true },
      ),
    );
  }
}

class Capture implements Logger {
  readonly lines: string[] = [];
  debug() {}
  info(_o: object, m?: string) {
    this.lines.push(`info ${m}`);
  }
  warn(_o: object, m?: string) {
    this.lines.push(`warn ${m}`);
  }
  error(_o: object, m?: string) {
    this.lines.push(`error ${m}`);
  }
}

describe("supervisor", () => {
  it("computes an exponential back-off with a cap", () => {
    const b = { ...DEFAULT_BACKOFF, initialMs: 100, factor: 2, maxMs: 1000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, b)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it("restarts a failing source with growing delays and counts the restarts", async () => {
    const timers = new ManualTimers();
    const logger = new Capture();
    const src = new ScriptedSource("bad", ["fail", "fail", "fail", "hang"]);
    const records: RawRecord[] = [];
    const sup = new Supervisor([src], (r) => records.push(r), {
      timers,
      logger,
      backoff: { initialMs: 100, maxMs: 1000, factor: 2, resetAfterMs: 10_000 },
    });
    sup.start();
    await settle();
    assert.equal(src.runs, 1);
    let h = sup.health()[0]!;
    assert.equal(h.state, "backing-off");
    assert.equal(h.lastError, "SOURCE_FAILED: boom 1");
    assert.deepEqual(timers.pending(), [100]);
    await timers.advance(99);
    assert.equal(src.runs, 1, "not before the delay");
    await timers.advance(1);
    assert.equal(src.runs, 2);
    assert.deepEqual(timers.pending(), [200]);
    await timers.advance(200);
    assert.deepEqual(timers.pending(), [400]);
    await timers.advance(400);
    assert.equal(src.runs, 4);
    h = sup.health()[0]!;
    assert.equal(h.state, "running");
    assert.equal(h.restarts, 3);
    assert.equal(sup.restarts("bad"), 3);
    assert.equal(h.consecutiveFailures, 3);
    assert.equal(logger.lines.filter((l) => l.startsWith("warn")).length, 3);
    assert.equal(records.length, 4);
    await sup.stop();
    assert.equal(sup.health()[0]!.state, "stopped");
    assert.equal(src.active, 0);
  });

  it("treats a run that returns on its own, or throws synchronously, as a failure", async () => {
    const timers = new ManualTimers();
    const a = new ScriptedSource("returns", ["return", "hang"]);
    const b = new ScriptedSource("throws", ["throw-sync", "hang"]);
    const sup = new Supervisor([a, b], () => {}, { timers });
    sup.start();
    await settle();
    const byId = Object.fromEntries(sup.health().map((h) => [h.id, h]));
    assert.equal(byId.returns!.lastError, "run returned without being stopped");
    assert.equal(byId.throws!.lastError, "sync 1");
    await timers.advance(100);
    assert.deepEqual(
      sup.health().map((h) => [h.id, h.state, h.restarts]),
      [
        ["returns", "running", 1],
        ["throws", "running", 1],
      ],
    );
    await sup.stop();
  });

  it("resets the back-off after a healthy run", async () => {
    const timers = new ManualTimers();
    let release: (() => void) | null = null;
    let runs = 0;
    const src: Source = {
      id: "flaky",
      run: () => {
        runs++;
        // Runs 1-2 fail at once; run 3 lives a while, then fails; run 4 fails at once.
        if (runs === 3) return new Promise((_, rej) => (release = () => rej(new Error("late"))));
        return Promise.reject(new Error(`early ${runs}`));
      },
    };
    const sup = new Supervisor([src], () => {}, {
      timers,
      backoff: { initialMs: 100, factor: 10, maxMs: 60_000, resetAfterMs: 5_000 },
    });
    sup.start();
    await settle();
    await timers.advance(100); // run 2 fails → 1000 ms
    assert.deepEqual(timers.pending(), [1000]);
    await timers.advance(1000); // run 3 starts and stays up
    await timers.advance(6000);
    release!();
    await settle();
    assert.deepEqual(timers.pending(), [100], "a healthy run resets the delay to its start");
    assert.equal(sup.health()[0]!.consecutiveFailures, 1);
    await sup.stop();
    assert.deepEqual(timers.pending(), [], "stop cancels the pending restart");
    assert.equal(runs, 3);
  });

  it("isolates sources: one failing forever does not disturb the others", async () => {
    const timers = new ManualTimers();
    const bad = new ScriptedSource("bad", ["fail"]);
    const good = new ScriptedSource("good", ["hang"]);
    const records: string[] = [];
    const sup = new Supervisor([bad, good], (r) => records.push(r.text), {
      timers,
      backoff: { initialMs: 10, maxMs: 50, factor: 2, resetAfterMs: 1e9 },
    });
    sup.start();
    await settle();
    await timers.advance(2000);
    assert.equal(good.runs, 1);
    assert.equal(good.active, 1);
    assert.ok(bad.runs > 30, `bad restarted ${bad.runs} times`);
    const h = Object.fromEntries(sup.health().map((x) => [x.id, x]));
    assert.equal(h.good!.state, "running");
    assert.equal(h.good!.restarts, 0);
    assert.equal(h.bad!.restarts, bad.runs - 1);
    assert.ok(timers.pending()[0]! <= 50, "the delay is capped");
    await sup.stop();
    assert.equal(good.active, 0);
  });

  it("stop aborts every run and waits for it; it is idempotent and start afterwards does nothing", async () => {
    let finished = false;
    const slow: Source = {
      id: "slow",
      run: (_e, signal) =>
        new Promise((resolve) =>
          signal.addEventListener("abort", () =>
            setTimeout(() => {
              finished = true;
              resolve();
            }, 20),
          ),
        ),
    };
    const sup = new Supervisor([slow], () => {});
    sup.start();
    sup.start();
    await settle();
    const p1 = sup.stop();
    const p2 = sup.stop();
    assert.equal(p1, p2);
    await p1;
    assert.ok(finished, "stop waited for the run to settle");
    sup.start();
    assert.equal(sup.health()[0]!.state, "stopped");
    assert.throws(() => sup.add({ id: "late", run: async () => {} }));
  });

  it("never calls run for a source stopped before its run began", async () => {
    const s = new ScriptedSource("never", ["hang"]);
    const sup = new Supervisor([s], () => {});
    sup.start();
    await sup.stop();
    assert.equal(s.runs, 0);
    assert.equal(sup.health()[0]!.state, "stopped");
  });

  it("starts a source added while running, and refuses duplicate ids", async () => {
    const timers = new ManualTimers();
    const sup = new Supervisor([], () => {}, { timers });
    sup.start();
    const s = new ScriptedSource("later", ["hang"]);
    sup.add(s);
    await settle();
    assert.equal(s.runs, 1);
    assert.throws(() => sup.add(new ScriptedSource("later", ["hang"])), /duplicate/);
    await sup.stop();
  });

  it("shows a source's own status detail", async () => {
    const src: Source = {
      id: "d",
      run: (_e, signal) => new Promise((r) => signal.addEventListener("abort", () => r())),
      status: () => ({ detail: "following /var/log/x" }),
    };
    const sup = new Supervisor([src], () => {});
    sup.start();
    assert.equal(sup.health()[0]!.detail, "following /var/log/x");
    await sup.stop();
  });
});
