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
    // 280,000 distinct pairs, through three growths of the pair table (past 11,468, 45,875 and 183,500 pairs).
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
