import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BoundedQueue } from "../../src/notify/queue.js";
import { WindowLimit } from "../../src/notify/rate-limit.js";

describe("BoundedQueue", () => {
  test("FIFO that drops the oldest when full", () => {
    const q = new BoundedQueue<number>(3);
    assert.equal(q.push(1), undefined);
    q.push(2);
    q.push(3);
    assert.equal(q.push(4), 1);
    assert.equal(q.push(5), 2);
    assert.equal(q.dropped, 2);
    assert.equal(q.length, 3);
    assert.equal(q.peek(), 3);
    assert.equal(q.shift(), 3);
    q.push(6);
    assert.deepEqual(q.drain(), [4, 5, 6]);
    assert.equal(q.shift(), undefined);
    assert.equal(q.peek(), undefined);
  });

  test("wraps around many times", () => {
    const q = new BoundedQueue<number>(7);
    const out: number[] = [];
    for (let i = 0; i < 1000; i++) {
      q.push(i);
      if (i % 3 === 1) out.push(q.shift()!);
    }
    const rest = q.drain();
    assert.equal(rest.length, 7);
    assert.deepEqual(rest, [993, 994, 995, 996, 997, 998, 999]);
    assert.ok(
      out.every((v, i) => i === 0 || v > out[i - 1]!),
      "order kept",
    );
  });

  test("rejects a silly capacity", () => {
    assert.throws(() => new BoundedQueue(0), RangeError);
  });
});

describe("WindowLimit", () => {
  test("at most max per sliding window, and when the next slot opens", () => {
    const l = new WindowLimit(2, 1000);
    assert.equal(l.allows(0), true);
    l.note(0);
    l.note(400);
    assert.equal(l.allows(500), false);
    assert.equal(l.nextAt(500), 1000);
    assert.equal(l.allows(999), false);
    assert.equal(l.allows(1000), true);
    l.note(1000);
    assert.equal(l.allows(1200), false);
    assert.equal(l.nextAt(1200), 1400);
    assert.equal(l.nextAt(5000), 5000);
  });
});
