/**
 * TestReport's counters: per kind, pattern and address, and distinct accounts per address
 * through the shared pair table (across its growth).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TestReport } from "../../src/cli/test-report.js";
import type { SecurityEvent } from "../../src/core/events.js";

function ev(ip: string, account: string | undefined, kind: "auth_failed" | "unknown_account" = "auth_failed") {
  return {
    kind,
    time: 0,
    server: "asterisk",
    service: "PJSIP",
    pattern: "asterisk.pjsip.request_failed",
    account,
    line: "",
    remote: { address: ip, port: 5060 },
  } as SecurityEvent;
}

describe("TestReport", () => {
  it("counts distinct accounts per address exactly, interleaved, through the table's growth", () => {
    const r = new TestReport();
    const ips = Array.from({ length: 40 }, (_, i) => `198.51.100.${i + 1}`);
    // 40 addresses × 7,000 accounts, each account seen twice, interleaved by address:
    // 280,000 distinct pairs, through a growth of the pair table (past 196,608 pairs) and
    // five of the name table.
    const N = 7000;
    for (let round = 0; round < 2; round++)
      for (let n = 0; n < N; n++)
        for (let a = 0; a < ips.length; a++)
          r.add(ev(ips[a]!, `${1000 + n}`, n % 2 ? "auth_failed" : "unknown_account"), "f", 1);
    r.add(ev(ips[0]!, undefined), "f", 1);
    r.add(ev(ips[0]!, ""), "f", 1);
    const out = r.addresses();
    assert.equal(out.length, 40);
    assert.equal(out[0]!.ip, "198.51.100.1");
    assert.equal(out[0]!.events, 2 * N + 2);
    for (const a of out) {
      assert.equal(a.accountCount, N, a.ip);
      assert.equal(a.accounts.length, 50);
      assert.deepEqual(a.accounts.slice(0, 3), ["1000", "1001", "1002"]);
    }
    assert.deepEqual(out[1]!.kinds, { auth_failed: N, unknown_account: N });
    assert.deepEqual(r.byKind, { auth_failed: 40 * N + 2, unknown_account: 40 * N });
    assert.deepEqual(r.byPattern, { "asterisk.pjsip.request_failed": 80 * N + 2 });
    // Ties in event count are ordered by address.
    assert.deepEqual(
      out.slice(1, 4).map((a) => a.ip),
      ["198.51.100.10", "198.51.100.11", "198.51.100.12"],
    );
  });

  it("past 65,536 names and addresses, counts by name hash and still lists the names", () => {
    const r = new TestReport();
    // One address tries 70,000 names: the first 65,536 are numbered, the rest go by hash.
    for (let round = 0; round < 2; round++) for (let n = 0; n < 70_000; n++) r.add(ev("198.51.100.1", `u${n}`), "f", 1);
    // 70,000 more addresses, one name each: addresses past index 65,535 go by hash too.
    for (let i = 0; i < 70_000; i++) {
      const ip = `2001:db8::${(i + 1).toString(16)}`;
      r.add(ev(ip, "admin"), "f", 1);
      r.add(ev(ip, "admin"), "f", 1);
      r.add(ev(ip, `x${i}`), "f", 1);
    }
    const out = r.addresses();
    assert.equal(out.length, 70_001);
    assert.equal(out[0]!.ip, "198.51.100.1");
    assert.equal(out[0]!.accountCount, 70_000);
    assert.deepEqual(out[0]!.accounts.slice(0, 2), ["u0", "u1"]);
    const last = out.find((a) => a.ip === "2001:db8::11170")!;
    assert.deepEqual([last.events, last.accountCount, last.accounts], [3, 2, ["admin", "x69999"]]);
    // Hashed pairs share the 32-bit table with all others: of N pairs, about N²/2³³ (5 here)
    // are taken for ones already seen.
    const missed = out.slice(1).reduce((m, a) => m + 2 - a.accountCount, 0);
    assert.ok(missed <= 20, `${missed} pairs missed`);
    assert.ok(out.slice(1).every((a) => a.events === 3 && a.accounts.length === a.accountCount));
  });

  it("the same account name at two addresses counts once at each", () => {
    const r = new TestReport();
    r.add(ev("192.0.2.1", "100"), "f", 1);
    r.add(ev("2001:db8::1", "100"), "f", 2);
    r.add(ev("192.0.2.1", "100"), "f", 3);
    assert.deepEqual(
      r.addresses().map((a) => [a.ip, a.events, a.accountCount]),
      [
        ["192.0.2.1", 2, 1],
        ["2001:db8::1", 1, 1],
      ],
    );
  });
});
