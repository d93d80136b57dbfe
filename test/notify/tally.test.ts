import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { BanTally } from "../../src/notify/tally.js";
import type { BanNotice } from "../../src/notify/types.js";

const T0 = Date.UTC(2024, 4, 1);

function notice(target: string, rule = "r1", count = 1, at = T0): BanNotice {
  return { target, rule, reason: "x", count, duration: 60_000, first: at, last: at };
}

describe("BanTally", () => {
  test("merges notices of one address and counts it once", () => {
    const t = new BanTally(10);
    t.addBan(notice("198.51.100.1", "r1", 3, T0));
    t.addBan(notice("198.51.100.1", "r2", 4, T0 + 5));
    t.addBan({ ...notice("198.51.100.2", "r2", 1, T0 + 1), duration: null });
    assert.equal(t.total, 2);
    assert.deepEqual(t.rules(), [
      ["r1", 1],
      ["r2", 1],
    ]);
    const a = t.held.get("198.51.100.1")!;
    assert.equal(a.count, 7);
    assert.equal(a.rule, "r1", "counted under its first rule");
    assert.equal(a.last, T0 + 5);
    assert.equal(t.start, T0);
    assert.equal(t.end, T0 + 5);
    assert.deepEqual(
      t.top(5).map((h) => h.target),
      ["198.51.100.1", "198.51.100.2"],
    );
  });

  test("beyond holdLimit the oldest details go, the counts stay", () => {
    const t = new BanTally(3);
    for (let i = 1; i <= 10; i++) t.addBan(notice(`198.51.100.${i}`, i % 2 ? "odd" : "even"));
    assert.equal(t.total, 10);
    assert.equal(t.evicted, 7);
    assert.deepEqual([...t.held.keys()], ["198.51.100.8", "198.51.100.9", "198.51.100.10"]);
    assert.deepEqual(t.rules(), [
      ["even", 5],
      ["odd", 5],
    ]);
  });

  test("rule names beyond ruleLimit share one bucket", () => {
    const t = new BanTally(100, 2);
    for (let i = 1; i <= 5; i++) t.addBan(notice(`198.51.100.${i}`, `rule${i}`));
    assert.deepEqual(t.rules(), [
      ["(other rules)", 3],
      ["rule1", 1],
      ["rule2", 1],
    ]);
  });

  test("property: total = held + evicted, and merge counts each held address once", () => {
    const targets = fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 120 });
    fc.assert(
      fc.property(targets, targets, fc.integer({ min: 1, max: 60 }), (xs, ys, hold) => {
        const a = new BanTally(hold);
        const b = new BanTally(hold);
        for (const x of xs) a.addBan(notice(`198.51.100.${x}`, x % 3 ? "p" : "q"));
        for (const y of ys) b.addBan(notice(`198.51.100.${y}`, y % 3 ? "p" : "q"));
        for (const t of [a, b]) {
          assert.equal(t.total, t.held.size + t.evicted);
          assert.equal(
            t.rules().reduce((s, [, n]) => s + n, 0),
            t.total,
          );
        }
        a.merge(b);
        assert.equal(a.total, a.held.size + a.evicted);
        assert.equal(
          a.rules().reduce((s, [, n]) => s + n, 0),
          a.total,
        );
        if (hold >= 41) {
          // Nothing was ever evicted: the total is exactly the distinct addresses.
          assert.equal(a.total, new Set([...xs, ...ys]).size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
