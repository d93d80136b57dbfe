import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ownString } from "../../src/core/strings.js";
import { ClockTable } from "../../src/detect/clock-table.js";

/** A table whose per-slot state is one number, to compare against a Map model. */
class Probe extends ClockTable {
  value: number[] = [];
  protected grow(): void {}
  protected clear(s: number): void {
    this.value[s] = 0;
  }
  put(key: string, v: number, now: number, ttl: number): void {
    const s = this.slotFor(key, now);
    this.value[s] = v;
    this.expires[s] = now + ttl;
  }
  get(key: string, now: number): number | undefined {
    const s = this.peek(key, now);
    return s < 0 ? undefined : this.value[s];
  }
}

describe("ClockTable", () => {
  it("behaves like a Map while under its cap (random inserts, deletes, lookups)", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("put" as const), key: fc.string({ maxLength: 20 }), v: fc.integer() }),
      fc.record({ k: fc.constant("del" as const), key: fc.string({ maxLength: 20 }) }),
      fc.record({ k: fc.constant("get" as const), key: fc.string({ maxLength: 20 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
        const t = new Probe(100_000);
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.k === "put") {
            t.put(o.key, o.v, 0, 1e12);
            model.set(o.key, o.v);
          } else if (o.k === "del") {
            assert.equal(t.delete(o.key), model.delete(o.key));
          } else {
            assert.equal(t.get(o.key, 0), model.get(o.key));
          }
          assert.equal(t.size, model.size);
        }
        for (const [k, v] of model) assert.equal(t.get(k, 0), v);
      }),
      { numRuns: 60 },
    );
  });

  it("survives growth and many deletions with colliding probe runs", () => {
    const t = new Probe(50_000);
    for (let i = 0; i < 40_000; i++) t.put(`k${i}`, i, 0, 1e12);
    for (let i = 0; i < 40_000; i += 2) assert.ok(t.delete(`k${i}`));
    for (let i = 0; i < 40_000; i++) assert.equal(t.get(`k${i}`, 0), i % 2 ? i : undefined);
    assert.equal(t.size, 20_000);
  });

  it("expired entries read as absent and are replaced by fresh state", () => {
    const t = new Probe(10);
    t.put("a", 5, 0, 100);
    assert.equal(t.get("a", 100), 5);
    assert.equal(t.get("a", 101), undefined);
    t.slotFor("a", 200);
    assert.equal(t.fresh, true);
  });

  it("when full, evicts one-off keys before keys that keep coming back", () => {
    const t = new Probe(100);
    for (let i = 0; i < 10_000; i++) {
      t.put(`once-${i}`, 1, i, 1e12);
      if (i % 50 === 0) t.put("regular", 2, i, 1e12);
      assert.ok(t.size <= 100);
    }
    assert.equal(t.get("regular", 10_000), 2);
    assert.ok(t.evictions > 9_000);
  });

  it("ownString copies long strings out of their parent", () => {
    const line = "x".repeat(1000) + "198.51.100.123" + "y".repeat(1000);
    const ip = line.slice(1000, 1014);
    const own = ownString(ip);
    assert.equal(own, ip);
    assert.equal(ownString("short"), "short");
  });
});
