import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { DetectionEngine } from "../../src/detect/engine.js";
import { replay } from "../../src/detect/replay.js";
import type { Decision } from "../../src/detect/types.js";
import { attack, BF, HOUR, hostile, info, MIN, rule, SEC, T0 } from "./events.js";

const A = "198.51.100.7";

function feed(engine: DetectionEngine, events: SecurityEvent[]): Decision[] {
  return events.flatMap((e) => [...engine.observe(e)]);
}

function failures(ip: string, n: number, start = T0, step = MIN): SecurityEvent[] {
  return Array.from({ length: n }, (_, i) => attack("auth_failed", ip, { time: start + i * step }));
}

describe("engine: threshold rule", () => {
  it("bans on the 5th failure within 10 minutes, with the decision's evidence", () => {
    const e = new DetectionEngine([BF]);
    const events = failures(A, 5);
    const ds = events.map((ev) => e.observe(ev));
    assert.deepEqual(
      ds.slice(0, 4).map((d) => d.length),
      [0, 0, 0, 0],
    );
    assert.equal(ds[4]!.length, 1);
    const d = ds[4]![0]!;
    assert.equal(d.target, A);
    assert.equal(d.ip, A);
    assert.equal(d.rule, "bf");
    assert.equal(d.description, "brute force");
    assert.equal(d.count, 5);
    assert.equal(d.first, T0);
    assert.equal(d.last, T0 + 4 * MIN);
    assert.equal(d.duration, HOUR);
    assert.equal(d.simulate, false);
    assert.equal(d.suppressed, undefined);
    assert.equal(d.event, events[4]);
  });

  it("does not ban 4 failures, nor 5 spread over more than 10 minutes", () => {
    const e = new DetectionEngine([BF]);
    assert.deepEqual(feed(e, failures(A, 4)), []);
    const e2 = new DetectionEngine([BF]);
    assert.deepEqual(feed(e2, failures(A, 5, T0, 2.6 * MIN)), []);
  });

  it("a banned address does not re-trigger the rule until the ban is over; then escalates", () => {
    const e = new DetectionEngine([BF]);
    assert.equal(feed(e, failures(A, 5)).length, 1);
    // 20 more failures during the hour of the ban: nothing new.
    assert.equal(feed(e, failures(A, 20, T0 + 10 * MIN)).length, 0);
    // After the ban, 5 more failures ban again, twice as long.
    const again = feed(e, failures(A, 5, T0 + 4 * MIN + HOUR + SEC));
    assert.equal(again.length, 1);
    assert.equal(again[0]!.duration, 2 * HOUR);
  });

  it("forget(target) lets a manually unbanned address be detected again at once", () => {
    const e = new DetectionEngine([BF]);
    feed(e, failures(A, 5));
    e.forget(A);
    const again = feed(e, failures(A, 5, T0 + 10 * MIN));
    assert.equal(again.length, 1);
    assert.equal(again[0]!.count, 5, "counting restarted from zero");
  });

  it("info events never count; hostile events never ban and are counted", () => {
    const e = new DetectionEngine([BF, rule("id: any\ndescription: any attack\ntype: instant\nban: 1h\n")]);
    const evs: SecurityEvent[] = [];
    for (let i = 0; i < 10; i++) {
      evs.push(info("challenge_sent", A, { time: T0 + i }));
      evs.push(info("flood_end", A, { time: T0 + i }));
      evs.push(hostile([A, "203.0.113.9"], { time: T0 + i }));
    }
    assert.deepEqual(feed(e, evs), []);
    const st = e.stats();
    assert.equal(st.hostile, 10);
    assert.equal(st.attacks, 0);
    assert.equal(st.events, 30);
  });

  it("events with a non-finite time are dropped and counted, never banned on", () => {
    const e = new DetectionEngine([BF]);
    const bad = Array.from({ length: 10 }, () => attack("auth_failed", A, { time: Number.NaN }));
    assert.deepEqual(feed(e, bad), []);
    assert.equal(e.stats().invalid, 10);
  });

  it("decisions depend only on event times: replays agree, and shifting time shifts them", () => {
    const rules = [BF];
    const evs = [...failures(A, 12, T0, 20 * SEC), ...failures("203.0.113.5", 6, T0 + 5 * SEC, 30 * SEC)];
    const a = replay(evs, rules);
    const b = replay(evs, rules);
    assert.deepEqual(a, b);
    const shift = 365 * 24 * HOUR;
    const c = replay(
      evs.map((ev) => ({ ...ev, time: ev.time + shift })),
      rules,
    );
    assert.deepEqual(
      c.map((x) => Date.parse(x.last) - shift),
      a.map((x) => Date.parse(x.last)),
    );
    assert.equal(a.length, 2);
  });

  it("simulate rules return alert-only decisions and do not escalate", () => {
    const sim = rule(
      "id: sim\ndescription: d\nfilter: {kind: [auth_failed]}\ntype: threshold\ncount: 2\nwindow: 1m\nban: 1h\nsimulate: true\n",
    );
    const e = new DetectionEngine([sim]);
    const first = feed(e, failures(A, 2, T0, SEC));
    assert.equal(first.length, 1);
    assert.equal(first[0]!.simulate, true);
    const later = feed(e, failures(A, 2, T0 + 2 * HOUR, SEC));
    assert.equal(later[0]!.duration, HOUR, "an alert is not an offence");
    assert.equal(e.stats().simulated, 2);
  });
});

describe("engine: filters and primitives", () => {
  it("filters on server, service, pattern prefix and not", () => {
    const r = rule(`
id: f
description: d
filter:
  kind: [auth_failed]
  server: [asterisk]
  service: [pjsip]
  pattern: ["asterisk.pjsip.*"]
  not: { pattern: [asterisk.pjsip.ignored] }
type: instant
ban: 1h
`);
    const e = new DetectionEngine([r]);
    const ok = { server: "asterisk" as const, service: "PJSIP", pattern: "asterisk.pjsip.request_failed" };
    assert.equal(e.observe(attack("auth_failed", "192.0.2.1", { ...ok, server: "kamailio" })).length, 0);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.2", { ...ok, service: "AMI" })).length, 0);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.3", { ...ok, pattern: "asterisk.chansip.x" })).length, 0);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.4", { ...ok, pattern: "asterisk.pjsip.ignored" })).length, 0);
    assert.equal(e.observe(attack("unknown_account", "192.0.2.5", ok)).length, 0);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.6", ok)).length, 1);
  });

  it("distinct: 10 different accounts ban, 10 tries of one account do not", () => {
    const r = rule(
      "id: enum\ndescription: d\nfilter: {kind: [unknown_account]}\ntype: distinct\ncount: 10\nwindow: 10m\nban: 2h\n",
    );
    const e = new DetectionEngine([r]);
    const same = Array.from({ length: 10 }, (_, i) =>
      attack("unknown_account", A, { time: T0 + i * SEC, account: "100" }),
    );
    assert.deepEqual(feed(e, same), []);
    const walk = Array.from({ length: 10 }, (_, i) =>
      attack("unknown_account", "203.0.113.45", { time: T0 + i * SEC, account: String(100 + i) }),
    );
    const ds = feed(e, walk);
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.count, 10);
    assert.equal(ds[0]!.duration, 2 * HOUR);
  });

  it("instant User-Agent rule: case-insensitive, config scanner agents, allowAgents override", () => {
    const r = rule(
      "id: ua\ndescription: d\nfilter: {userAgent: [friendly-scanner], scannerAgents: true}\ntype: instant\nban: 1d\n",
    );
    const e = new DetectionEngine([r], { scannerAgents: ["evil-dialer"], policy: { allowAgents: ["our-monitor"] } });
    assert.equal(e.observe(attack("auth_failed", "192.0.2.1", { userAgent: "Friendly-Scanner" })).length, 1);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.2", { userAgent: "EVIL-Dialer/2.0" })).length, 1);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.3", { userAgent: "Zoiper 5" })).length, 0);
    assert.equal(e.observe(attack("auth_failed", "192.0.2.4")).length, 0);
    assert.equal(
      e.observe(attack("auth_failed", "192.0.2.5", { userAgent: "friendly-scanner (our-monitor)" })).length,
      0,
    );
    assert.equal(e.stats().agentAllowed, 1);
    const d = e.observe(attack("bad_request", "192.0.2.6", { userAgent: "friendly-scanner" }))[0]!;
    assert.equal(d.count, 1);
    assert.equal(d.first, d.last);
  });

  it("groupBy adds fields to the key", () => {
    const r = rule(
      "id: g\ndescription: d\nfilter: {kind: [auth_failed]}\ntype: threshold\ncount: 3\nwindow: 10m\nban: 1h\ngroupBy: [ip, account]\n",
    );
    const e = new DetectionEngine([r]);
    const mixed = ["a", "b", "c", "a", "b"].map((acc, i) =>
      attack("auth_failed", A, { time: T0 + i * SEC, account: acc }),
    );
    assert.deepEqual(feed(e, mixed), []);
    assert.equal(e.observe(attack("auth_failed", A, { time: T0 + 10 * SEC, account: "a" })).length, 1);
  });

  it("density: a flood bans, a trickle does not", () => {
    const r = rule(
      "id: fl\ndescription: d\ntype: density\nrate: 30\nper: 2s\nban: 1h\nfilter: {kind: [bad_request]}\n",
    );
    const e = new DetectionEngine([r]);
    const trickle = Array.from({ length: 100 }, (_, i) => attack("bad_request", A, { time: T0 + i * 100 }));
    assert.deepEqual(feed(e, trickle), []);
    const flood = Array.from({ length: 40 }, (_, i) => attack("bad_request", "203.0.113.9", { time: T0 + i * 10 }));
    const ds = feed(e, flood);
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.count, 31);
  });
});

describe("engine: IPv6", () => {
  it("counts and bans an IPv6 attacker by its /64", () => {
    const e = new DetectionEngine([BF]);
    const evs = Array.from({ length: 5 }, (_, i) =>
      attack("auth_failed", `2001:db8:1:2::${(i + 1).toString(16)}`, { time: T0 + i * SEC }),
    );
    const ds = feed(e, evs);
    assert.equal(ds.length, 1, "address rotation inside the /64 does not evade the count");
    assert.equal(ds[0]!.target, "2001:db8:1:2::/64");
    assert.equal(ds[0]!.ip, "2001:db8:1:2::5");
  });

  it("ipv6Prefix 128 bans the address itself; other lengths are configurable", () => {
    const e = new DetectionEngine([BF], { policy: { ipv6Prefix: 128 } });
    const ds = feed(
      e,
      Array.from({ length: 5 }, (_, i) => attack("auth_failed", "2001:db8::66", { time: T0 + i })),
    );
    assert.equal(ds[0]!.target, "2001:db8::66");
    const e48 = new DetectionEngine([BF], { policy: { ipv6Prefix: 48 } });
    const d48 = feed(
      e48,
      Array.from({ length: 5 }, (_, i) => attack("auth_failed", `2001:db8:7:${i}::1`, { time: T0 + i })),
    );
    assert.equal(d48[0]!.target, "2001:db8:7::/48");
  });
});
