import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { DetectionEngine } from "../../src/detect/engine.js";
import type { Decision } from "../../src/detect/types.js";
import { attack, rule, SEC, T0 } from "./events.js";

const IP = "203.0.113.45";

/** Counts auth failures and unknown accounts: 3 attempts within 10 min ban. */
const AUTH3 = rule(
  "id: auth3\ndescription: d\nfilter: {kind: [auth_failed, unknown_account, acl_denied]}\ntype: threshold\ncount: 3\nwindow: 10m\nban: 1h\n",
);

function run(
  events: SecurityEvent[],
  rules = [AUTH3],
  dedupWindow?: number,
): { ds: Decision[]; engine: DetectionEngine } {
  const engine = new DetectionEngine(rules, dedupWindow === undefined ? {} : { policy: { dedupWindow } });
  return { ds: events.flatMap((e) => [...engine.observe(e)]), engine };
}

/** PJSIP unknown user with credentials: InvalidAccountID + ChallengeResponseFailed, same Call-ID. */
function pjsipUnknown(i: number): SecurityEvent[] {
  const sessionId = `call-${i}`;
  const time = T0 + i * 10 * SEC;
  return [
    attack("unknown_account", IP, { time, sessionId, pattern: "asterisk.security.InvalidAccountID", account: `u${i}` }),
    attack("auth_failed", IP, { time: time + 1, sessionId, pattern: "asterisk.security.ChallengeResponseFailed" }),
  ];
}

describe("dedup", () => {
  it("PJSIP's two events for one packet count once", () => {
    const { ds, engine } = run([...pjsipUnknown(0), ...pjsipUnknown(1)]);
    assert.deepEqual(ds, [], "2 attempts, not 4 events");
    assert.equal(engine.stats().duplicates, 2);
    const third = run([0, 1, 2].flatMap(pjsipUnknown)).ds;
    assert.equal(third.length, 1);
    assert.equal(third[0]!.count, 3);
  });

  it("the same attempt in the security log and the full log counts once", () => {
    const evs = [0, 1].flatMap((i) => [
      ...pjsipUnknown(i),
      attack("unknown_account", IP, {
        time: T0 + i * 10 * SEC + 2,
        sessionId: `call-${i}`,
        pattern: "asterisk.pjsip.request_failed",
      }),
      attack("auth_failed", IP, {
        time: T0 + i * 10 * SEC + 3,
        sessionId: `call-${i}`,
        pattern: "asterisk.pjsip.request_failed",
      }),
    ]);
    assert.deepEqual(run(evs).ds, []);
  });

  it("a retry with the same Call-ID (same report again) is a new attempt", () => {
    const evs = [0, 1, 2].map((i) =>
      attack("auth_failed", IP, {
        time: T0 + i,
        sessionId: "fixed-call-id",
        pattern: "asterisk.security.ChallengeResponseFailed",
      }),
    );
    assert.equal(run(evs).ds.length, 1);
  });

  it("parallel sessions interleaved are separate attempts", () => {
    const evs: SecurityEvent[] = [];
    for (const s of ["a", "b", "c"])
      evs.push(attack("unknown_account", IP, { time: T0, sessionId: s, pattern: "p.iai" }));
    for (const s of ["a", "b", "c"])
      evs.push(attack("auth_failed", IP, { time: T0 + 1, sessionId: s, pattern: "p.crf" }));
    const { ds } = run(evs);
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.count, 3);
  });

  it("AMI's two manager.c lines for one login (no session id) count once", () => {
    const login = (i: number) => [
      attack("unknown_account", "192.0.2.77", {
        time: T0 + i * SEC,
        service: "AMI",
        pattern: "asterisk.ami.unknown_user",
      }),
      attack("auth_failed", "192.0.2.77", { time: T0 + i * SEC, service: "AMI", pattern: "asterisk.ami.auth_failed" }),
    ];
    assert.deepEqual(run([...login(0), ...login(5)]).ds, []);
    assert.equal(run([...login(0), ...login(5), ...login(10)]).ds.length, 1);
  });

  it("a session-less echo (acl.c) joins the attempt reported with a Call-ID, in either order", () => {
    const acl = (t: number) => attack("acl_denied", IP, { time: t, pattern: "asterisk.acl.rejected" });
    const dist = (t: number, s: string) =>
      attack("acl_denied", IP, { time: t, sessionId: s, pattern: "asterisk.pjsip.request_failed" });
    // acl.c first, then the distributor line.
    assert.deepEqual(run([acl(T0), dist(T0, "c1"), acl(T0 + 5 * SEC), dist(T0 + 5 * SEC, "c2")]).ds, []);
    // distributor first, then acl.c.
    assert.deepEqual(run([dist(T0, "c1"), acl(T0), dist(T0 + 5 * SEC, "c2"), acl(T0 + 5 * SEC)]).ds, []);
    assert.equal(
      run([acl(T0), dist(T0, "c1"), acl(T0 + 5 * SEC), dist(T0 + 5 * SEC, "c2"), dist(T0 + 9 * SEC, "c3")]).ds.length,
      1,
    );
  });

  it("a pike block, its ALERT line and other workers' copies are one flood", () => {
    const flood2 = rule(
      "id: fl2\ndescription: d\nfilter: {kind: [flood]}\ntype: threshold\ncount: 2\nwindow: 10m\nban: 1h\n",
    );
    const block = (t: number) => [
      attack("flood", IP, {
        time: t,
        server: "kamailio",
        service: "pike",
        pattern: "kamailio.pike.block",
        detail: "node=0x1",
      }),
      attack("flood", IP, { time: t + 1, server: "kamailio", service: "pike", pattern: "kamailio.pike.alert" }),
      attack("flood", IP, {
        time: t + 3,
        server: "kamailio",
        service: "pike",
        pattern: "kamailio.pike.block",
        detail: "node=0x1",
      }),
    ];
    assert.deepEqual(run(block(T0), [flood2]).ds, []);
    const ds = run([...block(T0), ...block(T0 + 22 * SEC)], [flood2]).ds;
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.count, 2);
  });

  it("each rule counts an attempt once, through the report it matches", () => {
    const bfOnly = rule(
      "id: bf\ndescription: d\nfilter: {kind: [auth_failed]}\ntype: threshold\ncount: 2\nwindow: 10m\nban: 1h\n",
    );
    const enumOnly = rule(
      "id: en\ndescription: d\nfilter: {kind: [unknown_account]}\ntype: distinct\ncount: 2\nwindow: 10m\nban: 1h\n",
    );
    const { ds } = run([0, 1].flatMap(pjsipUnknown), [bfOnly, enumOnly]);
    assert.deepEqual(
      ds.map((d) => d.rule),
      ["en", "bf"],
      "the InvalidAccountID counts for enumeration, the CRF of the same attempt for brute force",
    );
  });

  it("reports further apart than dedupWindow are separate attempts; 0 disables dedup", () => {
    const evs = [0, 1].flatMap(pjsipUnknown).map((e, i) => ({ ...e, time: T0 + i * 3 * SEC }));
    assert.equal(run(evs.slice(0, 3)).ds.length, 1, "3 s apart > 2 s default window");
    const close = [0, 1].flatMap(pjsipUnknown);
    assert.equal(run(close.slice(0, 3), [AUTH3], 0).ds.length, 1);
  });
});
