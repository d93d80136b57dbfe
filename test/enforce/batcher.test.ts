import assert from "node:assert/strict";
import { test } from "node:test";
import { Batcher, type BatcherOptions, type Op } from "../../src/enforce/batcher.js";
import { parseTarget } from "../../src/enforce/guard.js";

const add = (ip: string, expiresAt: number | null = null): Op => ({ kind: "add", target: parseTarget(ip), expiresAt });
const del = (ip: string): Op => ({ kind: "remove", target: parseTarget(ip) });
const label = (o: Op) => `${o.kind === "add" ? "+" : "-"}${o.target.text}`;

/** A batcher over an in-memory "kernel" that can be told to reject some targets. */
function harness(over: Partial<BatcherOptions> = {}) {
  const batches: string[][] = [];
  const failing = new Set<string>();
  const events: string[] = [];
  let gate: Promise<void> | null = null;
  const apply = async (ops: Op[]) => {
    batches.push(ops.map(label));
    if (gate) await gate;
    const bad = ops.find((o) => failing.has(o.target.text));
    if (bad) throw new Error(`rejected ${bad.target.text}`);
  };
  const b = new Batcher(apply, {
    windowMs: 0,
    maxAttempts: 3,
    backoffMs: 5,
    onFailure: (_e, ops) => events.push(`fail ${ops.length}`),
    onApplied: (op) => events.push(`applied ${label(op)}`),
    onRetry: (op, n) => events.push(`retry ${op.target.text} #${n}`),
    onGiveUp: (op) => events.push(`give up ${op.target.text}`),
    ...over,
  });
  return {
    b,
    batches,
    failing,
    events,
    hold() {
      let open!: () => void;
      gate = new Promise<void>((r) => {
        open = r;
      });
      return () => {
        gate = null;
        open();
      };
    },
  };
}

test("a lone operation is applied at once, in a transaction of its own", async () => {
  const h = harness({ windowMs: 10_000 });
  const t0 = performance.now();
  await h.b.submit(add("198.51.100.1"));
  assert.ok(performance.now() - t0 < 5000, "not held back by the window");
  assert.deepEqual(h.batches, [["+198.51.100.1"]]);
});

test("operations submitted in the same turn, or while a transaction runs, go together", async () => {
  const h = harness();
  const release = h.hold();
  const first = [h.b.submit(add("198.51.100.1")), h.b.submit(add("198.51.100.2"))];
  await new Promise((r) => setImmediate(r));
  const second = [h.b.submit(add("198.51.100.3")), h.b.submit(del("198.51.100.4")), h.b.submit(add("198.51.100.5"))];
  release();
  await Promise.all([...first, ...second]);
  assert.deepEqual(h.batches, [
    ["+198.51.100.1", "+198.51.100.2"],
    ["+198.51.100.3", "-198.51.100.4", "+198.51.100.5"],
  ]);
});

test("a newer operation on the same target replaces a queued one and settles both promises", async () => {
  const h = harness();
  const release = h.hold();
  const inFlight = h.b.submit(add("198.51.100.9"));
  await new Promise((r) => setImmediate(r));
  const a = h.b.submit(add("198.51.100.1", 5));
  const b = h.b.submit(add("198.51.100.1", 9));
  const c = h.b.submit(del("198.51.100.1"));
  release();
  await Promise.all([inFlight, a, b, c]);
  assert.deepEqual(h.batches, [["+198.51.100.9"], ["-198.51.100.1"]]);
});

test("a failing operation is isolated by halving; the others land in the same round", async () => {
  const h = harness({ maxAttempts: 1 });
  h.failing.add("198.51.100.3");
  const ps = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"].map((ip) =>
    h.b.submit(add(ip)).then(
      () => "ok",
      (e: Error) => e.message,
    ),
  );
  assert.deepEqual(await Promise.all(ps), ["ok", "ok", "rejected 198.51.100.3", "ok", "ok"]);
  assert.ok(h.events.includes("give up 198.51.100.3"));
  assert.equal(h.events.filter((e) => e.startsWith("applied")).length, 4);
  assert.equal(h.events[0], "fail 5", "the whole batch's failure is reported once, up front");
});

test("a failed operation is retried with back-off and resolves once it lands", async () => {
  // Eight attempts span about 27 s: a loaded machine cannot make this run out of attempts.
  const h = harness({ maxAttempts: 8, backoffMs: 5 });
  h.failing.add("198.51.100.7");
  const p = h.b.submit(add("198.51.100.7"));
  const other = h.b.submit(add("198.51.100.8"));
  await other;
  await new Promise((r) => setTimeout(r, 30));
  h.failing.clear();
  await p;
  const retries = h.events.filter((e) => e.startsWith("retry"));
  assert.ok(retries.length >= 1, retries.join());
  assert.ok(h.events.includes("applied +198.51.100.7"));
});

test("after the last attempt the promise rejects and later operations still run", async () => {
  const h = harness({ maxAttempts: 2, backoffMs: 1 });
  h.failing.add("198.51.100.7");
  await assert.rejects(h.b.submit(add("198.51.100.7")), /rejected 198.51.100.7/);
  await h.b.submit(add("198.51.100.8"));
  assert.deepEqual(
    h.events.filter((e) => !e.startsWith("applied +198.51.100.8")),
    ["fail 1", "retry 198.51.100.7 #1", "fail 1", "give up 198.51.100.7"],
  );
});

test("exclusive work waits for the transaction in flight and holds new ones back", async () => {
  const h = harness();
  const order: string[] = [];
  const release = h.hold();
  const p1 = h.b.submit(add("198.51.100.1")).then(() => order.push("op1"));
  await new Promise((r) => setImmediate(r));
  const ex = h.b.exclusive(async () => {
    order.push("exclusive start");
    await new Promise((r) => setTimeout(r, 20));
    order.push("exclusive end");
  });
  const p2 = h.b.submit(add("198.51.100.2")).then(() => order.push("op2"));
  release();
  await Promise.all([p1, ex, p2]);
  assert.deepEqual(order, ["op1", "exclusive start", "exclusive end", "op2"]);
});

test("commit applies what waits for the window or a retry, now", async () => {
  const h = harness({ windowMs: 60_000, backoffMs: 60_000, maxAttempts: 3 });
  // A batch of two makes the next one wait for the (long) window.
  await Promise.all([h.b.submit(add("198.51.100.1")), h.b.submit(add("198.51.100.2"))]);
  h.failing.add("198.51.100.4");
  const queued = h.b.submit(add("198.51.100.3"));
  const retrying = h.b.submit(add("198.51.100.4")).catch(() => "gave up");
  await h.b.commit();
  await queued;
  assert.equal(h.b.pending, 1, "the failing one waits for its retry");
  h.failing.clear();
  await h.b.commit();
  assert.equal(await retrying, undefined);
  assert.equal(h.b.pending, 0);
});

test("close gives each operation a last attempt and rejects what still fails", async () => {
  const h = harness({ backoffMs: 60_000, maxAttempts: 10 });
  h.failing.add("198.51.100.4");
  const p = h.b.submit(add("198.51.100.4")).catch((e: Error) => e.message);
  await new Promise((r) => setTimeout(r, 10));
  await h.b.close();
  assert.equal(await p, "rejected 198.51.100.4");
});
