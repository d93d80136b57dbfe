/**
 * The (key, tag) count table against a plain Map, through growth, draining and shrinking.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { IntCounts } from "../../src/metrics/int-counts.js";
import { addressKey, v4Text } from "../../src/metrics/statsd.js";

function drained(t: IntCounts): Map<string, number> {
  const out = new Map<string, number>();
  t.drain((key, tag, n) => {
    const k = `${key}/${tag}`;
    assert.ok(!out.has(k), `pair ${k} drained twice`);
    out.set(k, n);
  });
  return out;
}

describe("IntCounts", () => {
  it("counts exactly like a Map, across growth and several windows", () => {
    const op = fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 40 }));
    // Few distinct keys (repeats) mixed with many (growth past the initial 1024 slots).
    const window = fc.oneof(
      fc.array(fc.tuple(fc.constantFrom(-1, 0, 1, 0x7fffffff, -(2 ** 31), 0x0a000001), fc.constantFrom(1, 9, 17)), {
        maxLength: 200,
      }),
      fc.array(op, { minLength: 600, maxLength: 3000 }),
    );
    fc.assert(
      fc.property(fc.array(window, { minLength: 1, maxLength: 4 }), (windows) => {
        const t = new IntCounts();
        for (const w of windows) {
          const ref = new Map<string, number>();
          for (const [key, tag] of w) {
            const k = `${key}/${tag}`;
            const fresh = !ref.has(k);
            ref.set(k, (ref.get(k) ?? 0) + 1);
            assert.equal(t.inc(key, tag), fresh);
          }
          assert.equal(t.size, ref.size);
          assert.deepEqual(drained(t), ref);
          assert.equal(t.size, 0);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("shrinks back after a large window and keeps counting", () => {
    const t = new IntCounts();
    for (let i = 0; i < 50_000; i++) t.inc(i, 1);
    assert.equal(drained(t).size, 50_000);
    t.inc(7, 2);
    t.inc(7, 2);
    assert.deepEqual(drained(t), new Map([["7/2", 2]]));
  });

  it("round-trips addresses through addressKey and v4Text", () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), (p) => {
        const ip = p.join(".");
        assert.equal(v4Text(addressKey(ip) as number), ip);
      }),
    );
  });
});
