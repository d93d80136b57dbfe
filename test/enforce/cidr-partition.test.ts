import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  covers,
  type Expiry,
  laterExpiry,
  type NetBan,
  NetModel,
  netFromText,
  netToText,
  partition,
} from "../../src/enforce/cidr-partition.js";

const ban = (text: string, expiresAt: Expiry): NetBan => ({ ...netFromText(text), expiresAt });
const show = (ps: NetBan[]) => ps.map((p) => `${netToText(p)}@${p.expiresAt}`).sort();

test("network text round-trips in normalizeCidr's form", () => {
  for (const t of ["198.51.100.0/24", "2001:db8:bad::/64", "10.0.0.7", "2001:db8::1", "0.0.0.0/0"])
    assert.equal(netToText(netFromText(t)), t);
  assert.equal(netToText(netFromText("198.51.100.77/24")), "198.51.100.0/24");
  assert.ok(covers(netFromText("10.0.0.0/8"), netFromText("10.1.2.0/24")));
  assert.ok(!covers(netFromText("10.1.2.0/24"), netFromText("10.0.0.0/8")));
  assert.ok(!covers(netFromText("10.0.0.0/8"), netFromText("2001:db8::/32")));
});

test("disjoint bans are their own pieces; a nested ban that ends earlier disappears", () => {
  assert.deepEqual(show(partition([ban("10.0.0.0/24", 5), ban("10.0.1.0/24", 7)])), ["10.0.0.0/24@5", "10.0.1.0/24@7"]);
  assert.deepEqual(show(partition([ban("10.0.0.0/24", 9), ban("10.0.0.0/25", 5)])), ["10.0.0.0/24@9"]);
  assert.deepEqual(show(partition([ban("10.0.0.0/24", null), ban("10.0.0.0/25", 5)])), ["10.0.0.0/24@null"]);
});

test("a nested ban that outlasts its cover splits the cover", () => {
  assert.deepEqual(show(partition([ban("10.0.0.0/24", 5), ban("10.0.0.0/25", 9)])), [
    "10.0.0.0/25@9",
    "10.0.0.128/25@5",
  ]);
  assert.deepEqual(show(partition([ban("10.0.0.0/24", 5), ban("10.0.0.64/26", null)])), [
    "10.0.0.0/26@5",
    "10.0.0.128/25@5",
    "10.0.0.64/26@null",
  ]);
});

/** Nested bans inside 10.0.0.0/24, so that every address can be checked. */
const arbBan = fc
  .record({
    prefix: fc.integer({ min: 24, max: 32 }),
    host: fc.integer({ min: 0, max: 255 }),
    exp: fc.option(fc.integer({ min: 1, max: 9 })),
  })
  .map(({ prefix, host, exp }) => ban(`10.0.0.${host}/${prefix}`, exp));

function coverOf(addr: number, nets: readonly NetBan[]): Expiry | undefined {
  const a = netFromText(`10.0.0.${addr}`);
  let e: Expiry | undefined;
  for (const n of nets) if (covers(n, a)) e = laterExpiry(e, n.expiresAt);
  return e;
}

test("property: pieces are disjoint and every address keeps its longest covering ban", () => {
  fc.assert(
    fc.property(fc.array(arbBan, { maxLength: 12 }), (bans) => {
      const pieces = partition(bans);
      for (let i = 0; i < pieces.length; i++)
        for (let j = 0; j < pieces.length; j++)
          if (i !== j) assert.ok(!covers(pieces[i]!, pieces[j]!), "pieces overlap");
      for (let a = 0; a < 256; a++) assert.equal(coverOf(a, pieces), coverOf(a, bans));
    }),
    { numRuns: 300 },
  );
});

test("property: incremental changes keep the kernel equal to the partition, without overlap or stale deletes", () => {
  const arbOp = fc.record({ add: fc.boolean(), b: arbBan });
  fc.assert(
    fc.property(fc.array(arbOp, { maxLength: 25 }), fc.boolean(), (ops, failSome) => {
      const m = new NetModel();
      const kernel = new Map<string, NetBan>();
      const logical = new Map<string, NetBan>();
      ops.forEach((op, i) => {
        const diff = op.add ? m.add(op.b) : m.remove(op.b);
        // Now and then the transaction fails: the model must roll back to the kernel's state.
        if (failSome && i % 3 === 2) {
          m.rollback();
          return;
        }
        m.commit();
        if (op.add) logical.set(netToText(op.b), op.b);
        else logical.delete(netToText(op.b));
        for (const r of diff.remove) {
          assert.ok(kernel.has(netToText(r)), "deletes only what the kernel holds");
          kernel.delete(netToText(r));
        }
        for (const a of diff.add) {
          for (const k of kernel.values()) assert.ok(!covers(k, a) && !covers(a, k), "adds never overlap");
          kernel.set(netToText(a), a);
        }
        assert.deepEqual(show([...kernel.values()]), show(partition([...logical.values()])));
        assert.deepEqual(show(m.kernel()), show([...kernel.values()]));
      });
    }),
    { numRuns: 300 },
  );
});

test("loading kernel pieces, then lifting a cover re-exposes nothing that was not banned", () => {
  const m = new NetModel();
  m.load([ban("10.0.0.0/25", 9), ban("10.0.0.128/25", 5)]);
  const d = m.add(ban("10.0.0.0/24", 7));
  // The /24 outlasts the right half but not the left one.
  assert.deepEqual(show(d.remove), ["10.0.0.128/25@5"]);
  assert.deepEqual(show(d.add), ["10.0.0.128/25@7"]);
  m.commit();
  const back = m.remove(netFromText("10.0.0.0/24"));
  assert.deepEqual(show(back.remove), ["10.0.0.128/25@7"]);
  assert.deepEqual(show(back.add), ["10.0.0.128/25@5"]);
  assert.deepEqual(m.remove(netFromText("10.9.0.0/24")), { remove: [], add: [] }, "unknown: nothing to do");
});
