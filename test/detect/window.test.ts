import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DensityCounter, LeakyCounter, SlidingCounter } from "../../src/detect/window.js";
import { DistinctCounter, DistinctLeakyCounter } from "../../src/detect/window-distinct.js";
import { MIN, SEC, T0 } from "./events.js";

describe("SlidingCounter (threshold, sliding window)", () => {
  it("fires on the N-th event inside the window, with count and first", () => {
    const c = new SlidingCounter(5, 10 * MIN, 1000);
    for (let i = 0; i < 4; i++) assert.equal(c.add("a", T0 + i * MIN), false);
    assert.equal(c.add("a", T0 + 9 * MIN), true);
    assert.equal(c.count, 5);
    assert.equal(c.first, T0);
  });

  it("does not fire when the N events span more than the window", () => {
    const c = new SlidingCounter(5, 10 * MIN, 1000);
    const times = [0, 3, 6, 9, 10.5, 11, 12].map((m) => T0 + m * MIN);
    const fired = times.map((t) => c.add("a", t));
    // 0..10.5 spans 10.5 min; the 6th event (3..11 = 8 min) completes a window.
    assert.deepEqual(fired, [false, false, false, false, false, true, false]);
    assert.equal(c.first, T0 + 3 * MIN);
  });

  it("window boundary is inclusive", () => {
    const c = new SlidingCounter(2, 10 * SEC, 1000);
    c.add("a", T0);
    assert.equal(c.add("a", T0 + 10 * SEC), true);
  });

  it("keys are independent and state is cleared after firing", () => {
    const c = new SlidingCounter(2, MIN, 1000);
    assert.equal(c.add("a", T0), false);
    assert.equal(c.add("b", T0), false);
    assert.equal(c.add("a", T0 + 1), true);
    assert.equal(c.add("a", T0 + 2), false, "count restarts after firing");
    assert.equal(c.add("b", T0 + 3), true);
  });

  it("tolerates slightly out-of-order events", () => {
    const c = new SlidingCounter(3, 10 * SEC, 1000);
    c.add("a", T0 + 5 * SEC);
    c.add("a", T0);
    assert.equal(c.add("a", T0 + 9 * SEC), true);
    assert.equal(c.first, T0);
  });
});

describe("LeakyCounter (CrowdSec leaky bucket)", () => {
  it("overflows on the (capacity + 1)-th event without leak", () => {
    const c = new LeakyCounter(5, 10 * SEC, 1000);
    for (let i = 0; i < 5; i++) assert.equal(c.add("a", T0), false);
    assert.equal(c.add("a", T0), true);
    assert.equal(c.count, 6);
    assert.equal(c.first, T0);
  });

  it("leaks one unit per leak interval", () => {
    const c = new LeakyCounter(5, 10 * SEC, 1000);
    for (let i = 0; i < 5; i++) c.add("a", T0);
    // 10 s later one unit has leaked: one more fits, the next overflows.
    assert.equal(c.add("a", T0 + 10 * SEC), false);
    assert.equal(c.add("a", T0 + 10 * SEC), true);
    assert.equal(c.count, 7);
  });

  it("a steady rate at the leak speed never overflows", () => {
    const c = new LeakyCounter(2, 10 * SEC, 1000);
    for (let i = 0; i < 100; i++) assert.equal(c.add("a", T0 + i * 10 * SEC), false);
  });

  it("a drained bucket starts afresh (first and count reset)", () => {
    const c = new LeakyCounter(1, 10 * SEC, 1000);
    c.add("a", T0);
    c.add("a", T0 + 60 * SEC);
    assert.equal(c.add("a", T0 + 60 * SEC), true);
    assert.equal(c.first, T0 + 60 * SEC);
    assert.equal(c.count, 2);
  });
});

describe("DistinctCounter (sliding)", () => {
  it("counts different values only", () => {
    const c = new DistinctCounter(3, 10 * MIN, 1000, 7);
    assert.equal(c.add("a", T0, "100"), false);
    assert.equal(c.add("a", T0 + 1, "100"), false);
    assert.equal(c.add("a", T0 + 2, "101"), false);
    assert.equal(c.add("a", T0 + 3, "101"), false);
    assert.equal(c.add("a", T0 + 4, "102"), true);
    assert.equal(c.count, 3);
    assert.equal(c.first, T0 + 1, "earliest counted sighting (100 was refreshed at +1)");
  });

  it("values older than the window no longer count", () => {
    const c = new DistinctCounter(3, MIN, 1000, 7);
    c.add("a", T0, "x");
    c.add("a", T0 + 40 * SEC, "y");
    assert.equal(c.add("a", T0 + 90 * SEC, "z"), false, "x is out of the window");
    assert.equal(c.add("a", T0 + 95 * SEC, "w"), true);
    assert.equal(c.first, T0 + 40 * SEC);
  });

  it("ignores events without the field", () => {
    const c = new DistinctCounter(1, MIN, 1000, 7);
    assert.equal(c.add("a", T0, undefined), false);
    assert.equal(c.add("a", T0, ""), false);
    assert.equal(c.add("a", T0, "v"), true);
  });
});

describe("DistinctLeakyCounter (CrowdSec distinct)", () => {
  it("repeats do not pour; the (capacity + 1)-th new value overflows", () => {
    const c = new DistinctLeakyCounter(5, 10 * SEC, 1000, 7);
    for (const u of ["a", "b", "a", "c", "d", "b", "e"]) assert.equal(c.add("k", T0, u), false);
    assert.equal(c.add("k", T0, "f"), true);
    assert.equal(c.count, 6);
  });
});

describe("DensityCounter (pike style)", () => {
  it("fires when more than `rate` events arrive within one unit", () => {
    const c = new DensityCounter(3, 2 * SEC, 1000);
    for (let i = 0; i < 3; i++) assert.equal(c.add("a", T0 + i * 100), false);
    assert.equal(c.add("a", T0 + 400), true);
    assert.equal(c.count, 4);
  });

  it("a steady rate below the limit never fires", () => {
    const c = new DensityCounter(5, 3 * SEC, 1000);
    for (let i = 0; i < 300; i++) assert.equal(c.add("a", T0 + i * SEC), false);
  });

  it("a burst across a unit boundary is still caught", () => {
    const c = new DensityCounter(4, 2 * SEC, 1000);
    // The unit starts at T0. 4 events at its end and 2 just after: 5 within 0.15 s, which a
    // fixed per-unit count (4, then 2) would miss.
    const before = [0, 1.9, 1.95, 1.99].map((s) => T0 + s * SEC);
    for (const t of before) assert.equal(c.add("a", t), false);
    const after = [2.01, 2.05].map((s) => c.add("a", T0 + s * SEC));
    assert.ok(after.includes(true), "the burst must fire");
  });
});

describe("bounded tables", () => {
  it("never tracks more keys than the cap, and a key hit repeatedly survives a flood", () => {
    const cap = 1000;
    const c = new SlidingCounter(5, 10 * MIN, cap);
    let fired = false;
    for (let i = 0; i < 100_000; i++) {
      c.add(`spoof-${i}`, T0 + i);
      // The attacker's 5 attempts are 600 new keys apart: less than the cap.
      if (i % 600 === 0 && c.add("attacker", T0 + i)) fired = true;
      assert.ok(c.size <= cap);
    }
    assert.ok(fired, "the attacker must still be detected");
    assert.ok(c.evictions > 90_000);
  });

  it("expired keys are reclaimed without eviction pressure", () => {
    const c = new SlidingCounter(5, SEC, 100_000);
    for (let i = 0; i < 5000; i++) c.add(`k${i}`, T0);
    // Much later, new keys reclaim the expired ones as they arrive.
    for (let i = 0; i < 5000; i++) c.add(`n${i}`, T0 + 10 * SEC + i);
    assert.ok(c.size < 6000, `size ${c.size}`);
    assert.equal(c.evictions, 0);
  });
});
