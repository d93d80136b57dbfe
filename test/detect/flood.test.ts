/**
 * A flood of spoofed source addresses: memory stays bounded by policy.maxTrackedKeys, and the
 * real attacker mixed into the flood is still banned. (Peak RSS with 1,000,000 addresses is
 * measured by bench/detect.ts, not here.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { DetectionEngine } from "../../src/detect/engine.js";
import { loadRules } from "../../src/detect/rules.js";
import type { Decision } from "../../src/detect/types.js";
import { attack, T0 } from "./events.js";

const CAP = 1000;

function spoofed(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

describe("flood of spoofed addresses", () => {
  it("keeps every table within maxTrackedKeys and still bans the real attacker", () => {
    const rules = loadRules();
    const engine = new DetectionEngine(rules, { policy: { maxTrackedKeys: CAP } });
    const decisions: Decision[] = [];
    const N = 200_000;
    let maxTracked = 0;
    for (let i = 0; i < N; i++) {
      const t = T0 + i;
      // Every spoofed address fails once, with its own account and Call-ID.
      const ev: SecurityEvent = attack(i % 3 === 0 ? "unknown_account" : "auth_failed", spoofed(i), {
        time: t,
        account: `u${i}`,
        sessionId: `s${i}`,
        pattern: "asterisk.pjsip.request_failed",
      });
      decisions.push(...engine.observe(ev));
      // The attacker: one failure every 150 spoofed events (well within the table size).
      if (i % 150 === 0)
        decisions.push(
          ...engine.observe(attack("auth_failed", "198.51.100.23", { time: t, account: "1001", sessionId: `a${i}` })),
        );
      if (i % 10_000 === 0) maxTracked = Math.max(maxTracked, engine.stats().trackedKeys);
    }
    const st = engine.stats();
    // Counting tables (one per counting rule that sees these events), dedup and active bans.
    const tables = rules.filter((r) => r.type !== "instant").length + 2;
    assert.ok(Math.max(maxTracked, st.trackedKeys) <= tables * CAP, `tracked ${st.trackedKeys}`);
    assert.ok(st.evictions > N, `evictions ${st.evictions}`);
    const banned = decisions.map((d) => d.target);
    assert.deepEqual(banned, ["198.51.100.23"], "the attacker, and nobody else");
    assert.equal(decisions[0]!.rule, "sip-auth-bruteforce");
  });

  it("spoofed IPv6 addresses are bounded too and fold into /64 targets", () => {
    const engine = new DetectionEngine(loadRules(), { policy: { maxTrackedKeys: CAP } });
    const out: Decision[] = [];
    for (let i = 0; i < 50_000; i++) {
      const ip = `2001:db8:${(i >> 4).toString(16)}:${(i & 15).toString(16)}::${(i % 7) + 1}`;
      out.push(...engine.observe(attack("auth_failed", ip, { time: T0 + i, account: "x" })));
    }
    assert.ok(engine.stats().trackedKeys <= 12 * CAP);
    assert.deepEqual(out, []);
  });
});
