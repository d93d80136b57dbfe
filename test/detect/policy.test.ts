import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { hostAddresses as localAddresses } from "../../src/core/host-addresses.js";
import { DetectionEngine } from "../../src/detect/engine.js";
import { type BanHistory, MemoryBanHistory } from "../../src/detect/history.js";
import { BanPolicy } from "../../src/detect/policy.js";
import type { Decision } from "../../src/detect/types.js";
import { attack, BF, HOUR, info, MIN, rule, SEC, T0 } from "./events.js";

const DAY = 24 * HOUR;

function failures(ip: string, n: number, start = T0, step = SEC): SecurityEvent[] {
  return Array.from({ length: n }, (_, i) => attack("auth_failed", ip, { time: start + i * step }));
}

function run(engine: DetectionEngine, events: SecurityEvent[]): Decision[] {
  return events.flatMap((e) => [...engine.observe(e)]);
}

const SCANNER = rule("id: scan\ndescription: d\nfilter: {userAgent: [sipvicious]}\ntype: instant\nban: 1d\n");
const PIKE = rule("id: pike\ndescription: d\nfilter: {kind: [flood]}\ntype: instant\nban: 1h\n");
const DENSITY = rule(
  "id: dens\ndescription: d\nfilter: {kind: [auth_failed]}\ntype: density\nrate: 3\nper: 10s\nban: 1h\n",
);

describe("policy: allowlist", () => {
  it("never bans an allowlisted address (v4 and v6); reports and counts it as suppressed", () => {
    const got: Decision[] = [];
    const e = new DetectionEngine([BF, SCANNER], {
      policy: { allowlist: ["192.0.2.0/24", "2001:db8:aaaa::/48"] },
      onSuppressed: (d) => got.push(d),
    });
    assert.deepEqual(run(e, failures("192.0.2.44", 5)), []);
    assert.deepEqual(run(e, failures("2001:db8:aaaa:1::9", 5)), []);
    assert.deepEqual(run(e, [attack("auth_failed", "192.0.2.45", { userAgent: "sipvicious" })]), []);
    assert.equal(got.length, 3);
    assert.ok(got.every((d) => d.suppressed === "allowlist"));
    assert.equal(got[0]!.ip, "192.0.2.44");
    assert.equal(got[0]!.count, 5);
    assert.equal(e.stats().suppressed.allowlist, 3);
    assert.equal(e.stats().decisions, 0);
    // Outside the list, the same attack bans.
    assert.equal(run(e, failures("198.51.100.44", 5)).length, 1);
  });

  it("an IPv6 /64 ban shrinks to the address when the /64 holds an allowlisted host", () => {
    const e = new DetectionEngine([BF], { policy: { allowlist: ["2001:db8:1:2::5"] } });
    const ds = run(e, failures("2001:db8:1:2::66", 5));
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.target, "2001:db8:1:2::66");
  });
});

describe("policy: the host's own addresses", () => {
  it("never bans loopback or an injected interface address, even for scanner rules", () => {
    const got: Decision[] = [];
    const e = new DetectionEngine([BF, SCANNER], {
      hostAddresses: ["203.0.113.10", "fe80::1%eth0", "2001:db8:5::10"],
      onSuppressed: (d) => got.push(d),
    });
    for (const ip of ["127.0.0.1", "127.9.9.9", "::1", "203.0.113.10", "fe80::1"]) {
      assert.deepEqual(run(e, failures(ip, 5)), [], ip);
    }
    assert.deepEqual(run(e, [attack("auth_failed", "203.0.113.10", { userAgent: "sipvicious" })]), []);
    assert.equal(e.stats().suppressed.self, 6);
    assert.ok(got.every((d) => d.suppressed === "self"));
    // A neighbour in the host's /64 is banned alone, not with its /64.
    const ds = run(e, failures("2001:db8:5::99", 5));
    assert.equal(ds[0]!.target, "2001:db8:5::99");
  });

  it("localAddresses() lists this host's interfaces, loopback included", () => {
    const a = localAddresses();
    assert.ok(a.includes("127.0.0.1"), a.join(","));
  });
});

describe("policy: trust after a successful login", () => {
  it("an address that logged in recently is not banned by brute-force rules", () => {
    const got: Decision[] = [];
    const e = new DetectionEngine([BF], { policy: { trustAfterAuth: 10 * MIN }, onSuppressed: (d) => got.push(d) });
    e.observe(info("auth_ok", "192.0.2.80", { time: T0 }));
    assert.deepEqual(run(e, failures("192.0.2.80", 5, T0 + MIN)), []);
    assert.equal(got[0]?.suppressed, "trusted");
    assert.equal(e.stats().suppressed.trusted, 1);
    // Once the trust window has passed, the same failures ban.
    assert.equal(run(e, failures("192.0.2.80", 5, T0 + 20 * MIN)).length, 1);
  });

  it("trust covers the IPv6 /64 of the login", () => {
    const e = new DetectionEngine([BF]);
    e.observe(info("auth_ok", "2001:db8:9:9::10", { time: T0 }));
    assert.deepEqual(run(e, failures("2001:db8:9:9::77", 5, T0 + SEC)), []);
  });

  it("trust never overrides scanner, flood or density rules", () => {
    const e = new DetectionEngine([SCANNER, PIKE, DENSITY]);
    const ip = "192.0.2.81";
    e.observe(info("auth_ok", ip, { time: T0 }));
    assert.equal(e.observe(attack("auth_failed", ip, { time: T0 + 1, userAgent: "sipvicious" })).length, 1);
    assert.equal(e.observe(attack("flood", ip, { time: T0 + 2 })).length, 1);
    const dens = run(e, failures(ip, 4, T0 + 3, 100));
    assert.equal(dens.length, 1);
    assert.equal(dens[0]!.rule, "dens");
  });

  it("trustAfterAuth 0 disables trust", () => {
    const e = new DetectionEngine([BF], { policy: { trustAfterAuth: 0 } });
    e.observe(info("auth_ok", "192.0.2.82", { time: T0 }));
    assert.equal(run(e, failures("192.0.2.82", 5, T0 + SEC)).length, 1);
  });
});

describe("policy: escalation", () => {
  it("each new ban multiplies the length by the factor, up to the maximum", () => {
    const e = new DetectionEngine([BF], { policy: { escalation: { factor: 3, max: 10 * HOUR, jitter: 0 } } });
    const lengths: number[] = [];
    let t = T0;
    for (let i = 0; i < 4; i++) {
      const ds = run(e, failures("198.51.100.9", 5, t));
      lengths.push(ds[0]!.duration);
      t += ds[0]!.duration + MIN;
    }
    assert.deepEqual(lengths, [HOUR, 3 * HOUR, 9 * HOUR, 10 * HOUR]);
  });

  it("a rule whose base ban exceeds the maximum keeps its base", () => {
    const long = rule("id: l\ndescription: d\nfilter: {kind: [flood]}\ntype: instant\nban: 30d\n");
    const e = new DetectionEngine([long]);
    assert.equal(e.observe(attack("flood", "198.51.100.10"))[0]!.duration, 30 * DAY);
  });

  it("a second rule firing during a running ban is the same offence", () => {
    const e = new DetectionEngine([BF, SCANNER]);
    const ip = "198.51.100.11";
    const a = run(e, failures(ip, 5));
    const b = e.observe(attack("auth_failed", ip, { time: T0 + 10 * SEC, userAgent: "sipvicious" }));
    assert.equal(a[0]!.duration, HOUR);
    assert.equal(b[0]!.duration, DAY, "not doubled");
    assert.equal(e.policy.history.offences(ip, T0 + MIN), 1);
  });

  it("history lives behind BanHistory and is queried with event time", () => {
    const calls: string[] = [];
    const inner = new MemoryBanHistory();
    const store: BanHistory = {
      offences(target, now) {
        calls.push(`offences ${target} ${now}`);
        return target === "198.51.100.12" ? 2 : inner.offences(target, now);
      },
      record(target, at) {
        calls.push(`record ${target} ${at}`);
        inner.record(target, at);
      },
    };
    const e = new DetectionEngine([BF], { history: store });
    const ds = run(e, failures("198.51.100.12", 5));
    assert.equal(ds[0]!.duration, 4 * HOUR, "two earlier offences in the store: ×2²");
    assert.deepEqual(calls, [`offences 198.51.100.12 ${T0 + 4 * SEC}`, `record 198.51.100.12 ${T0 + 4 * SEC}`]);
  });

  it("jitter is deterministic per target and time and stays within its bounds", () => {
    const opts = { escalation: { factor: 2, max: 7 * DAY, jitter: 0.2 } };
    const a = new BanPolicy(opts);
    const b = new BanPolicy(opts);
    const lengths = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const target = `198.51.100.${i}`;
      const la = a.banLength(target, HOUR, T0 + i, false, false);
      const lb = b.banLength(target, HOUR, T0 + i, false, false);
      assert.equal(la, lb);
      assert.ok(la >= 0.8 * HOUR && la <= 1.2 * HOUR, String(la));
      lengths.add(la);
    }
    assert.ok(lengths.size > 150, "jitter actually varies");
  });

  it("MemoryBanHistory forgets offences older than its decay", () => {
    const h = new MemoryBanHistory(DAY);
    h.record("x", T0);
    h.record("x", T0 + HOUR);
    assert.equal(h.offences("x", T0 + 2 * HOUR), 2);
    assert.equal(h.offences("x", T0 + DAY + 30 * MIN), 1);
    assert.equal(h.offences("y", T0), 0);
  });
});
