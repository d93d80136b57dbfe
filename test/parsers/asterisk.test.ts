/**
 * Behaviour of the Asterisk parser that the annotated fixtures cannot express: event fields
 * beyond the EventRecord (sessionId, detail), how the AMI double line is made foldable, the
 * hostile shape, the long-line rule, context handling, and robustness on pathological input.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAttack, type SecurityEvent } from "../../src/core/events.js";
import { asteriskParser } from "../../src/parsers/asterisk.js";
import { MAX_TRUSTED_LINE, SECURITY_PATTERNS } from "../../src/parsers/asterisk-event.js";
import { ASTERISK_SECURITY_EVENTS } from "../../src/parsers/asterisk-security-events.js";
import { LineClassifier } from "../../src/parsers/index.js";

const CTX = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };
const parse = (line: string, ctx = CTX): SecurityEvent | null => asteriskParser.parse(line, ctx);

function attackOf(line: string, ctx = CTX) {
  const ev = parse(line, ctx);
  assert.ok(ev && isAttack(ev), `no attack event for ${line}`);
  return ev;
}

const PJSIP = (from: string, addr: string, callid: string, reason: string) =>
  `[2024-05-14 10:21:11] NOTICE[2197] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '${from}' failed for '${addr}' (callid: ${callid}) - ${reason}`;

describe("asterisk parser: pattern ids and needles", () => {
  it("lists one stable id per security event type and per full-log message", () => {
    const ids = asteriskParser.patterns;
    assert.equal(new Set(ids).size, ids.length, "ids are unique");
    for (const id of ids) assert.match(id, /^asterisk\.[a-z0-9]+\.[A-Za-z_]+$/);
    for (const name of Object.keys(ASTERISK_SECURITY_EVENTS)) {
      assert.ok(ids.includes(`asterisk.security.${name}`), name);
      assert.equal(SECURITY_PATTERNS[name], `asterisk.security.${name}`);
    }
  });

  it("keeps needles few and literal", () => {
    assert.ok(asteriskParser.needles.length <= 12);
    for (const n of asteriskParser.needles) assert.ok(n.length >= 3, n);
  });
});

describe("asterisk parser: event fields", () => {
  it("folds the AMI 'nonexistent user' pair: same address, account, time and service, no sessionId", () => {
    const a = attackOf(
      "[2024-05-14 10:21:32] NOTICE[3301] manager.c: 192.0.2.77 tried to authenticate with nonexistent user 'admin'",
    );
    const b = attackOf("[2024-05-14 10:21:32] NOTICE[3301] manager.c: 192.0.2.77 failed to authenticate as 'admin'");
    assert.equal(a.kind, "unknown_account");
    assert.equal(b.kind, "auth_failed");
    for (const k of ["time", "service", "account", "sessionId"] as const) assert.equal(a[k], b[k], k);
    assert.deepEqual(a.remote, b.remote);
    assert.equal(a.sessionId, undefined);
  });

  it("gives the two pjsip lines of one attempt the same Call-ID as sessionId", () => {
    const a = attackOf(
      PJSIP("<sip:admin@10.20.0.5>", "203.0.113.45:5087", "3a6f0c1e9b2d4e7f", "No matching endpoint found"),
    );
    const b = attackOf(
      PJSIP("<sip:admin@10.20.0.5>", "203.0.113.45:5087", "3a6f0c1e9b2d4e7f", "Failed to authenticate"),
    );
    assert.equal(a.sessionId, "3a6f0c1e9b2d4e7f");
    assert.equal(b.sessionId, a.sessionId);
    assert.equal(a.detail, "REGISTER: No matching endpoint found");
    assert.equal(b.detail, "REGISTER: Failed to authenticate");
  });

  it("takes sessionId from SessionID and puts the event name (and ACL name) in detail", () => {
    const ev = attackOf(
      `[2024-05-14 10:21:24] SECURITY[1843] res_security_log.c: SecurityEvent="FailedACL",EventTV="2024-05-14T10:21:24.007+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="1002",SessionID="5f2e1d0c@198.51.100.99",LocalAddress="IPV4/UDP/10.20.0.5/5060",RemoteAddress="IPV4/UDP/198.51.100.99/5060",ACLName="not_match_endpoint_acl"`,
    );
    assert.equal(ev.sessionId, "5f2e1d0c@198.51.100.99");
    assert.equal(ev.detail, "FailedACL not_match_endpoint_acl");
    assert.equal(ev.server, "asterisk");
  });

  it("keeps a SessionID full of quotes and commas whole", () => {
    const sid = `!@#$%^&   *(}((')[ -+"++`;
    const ev = attackOf(
      `[2015-05-25 07:19:19] SECURITY[6988] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2015-05-25T07:19:19.015+0300",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="70000180",SessionID="${sid}",LocalAddress="IPV4/UDP/1.2.3.4/5060",RemoteAddress="IPV4/UDP/10.250.251.252/5061"`,
    );
    assert.equal(ev.sessionId, sid);
    assert.equal(ev.account, "70000180");
  });

  it("prefers EventTV over the line prefix", () => {
    const ev = attackOf(
      `[2024-05-14 12:00:00] SECURITY[1843] res_security_log.c: SecurityEvent="InvalidPassword",EventTV="2024-05-14T10:21:34.012+0200",Severity="Error",Service="AMI",EventVersion="2",AccountID="monitor",SessionID="0x1",LocalAddress="IPV4/TCP/0.0.0.0/5038",RemoteAddress="IPV4/TCP/192.0.2.77/41930",SessionTV="1970-01-01T00:00:00.000+0000"`,
    );
    assert.equal(new Date(ev.time).toISOString(), "2024-05-14T08:21:34.012Z");
  });
});

describe("asterisk parser: hostile lines", () => {
  it("yields hostile events with candidates and no address", () => {
    const ev = parse(
      PJSIP("<sip:1@x>", "198.51.100.9:5060", "a' failed for '192.0.2.10:5060", "Failed to authenticate"),
    );
    assert.ok(ev);
    assert.equal(ev.kind, "hostile");
    assert.equal(isAttack(ev), false);
    assert.equal(ev.remote, undefined);
    assert.ok(ev.kind === "hostile" && ev.candidates.includes("192.0.2.10:5060"));
  });

  it(`trusts a line of ${MAX_TRUSTED_LINE} characters but not a longer one (it could be a cut line)`, () => {
    const base = PJSIP('"x" <sip:1@10.20.0.5>', "198.51.100.9:5060", "c", "Failed to authenticate");
    const pad = (n: number) => base.replace('"x"', `"${"x".repeat(n - base.length + 1)}"`);
    const ok = pad(MAX_TRUSTED_LINE);
    const long = pad(MAX_TRUSTED_LINE + 1);
    assert.equal(ok.length, MAX_TRUSTED_LINE);
    assert.equal(long.length, MAX_TRUSTED_LINE + 1);
    assert.equal(parse(ok)?.kind, "auth_failed");
    const ev = parse(long);
    assert.equal(ev?.kind, "hostile");
    assert.deepEqual(ev?.kind === "hostile" && ev.candidates, ["198.51.100.9:5060"]);
  });
});

describe("asterisk parser: context", () => {
  const line = "[May 14 10:21:32] NOTICE[3301] manager.c: 192.0.2.77 failed to authenticate as 'admin'";

  it("reads zone-less times in ctx.zone, whatever zone the previous line used", () => {
    const utc = attackOf(line, CTX).time;
    const ny = attackOf(line, { zone: "America/New_York", now: CTX.now }).time;
    const utc2 = attackOf(line, CTX).time;
    assert.equal(ny - utc, 4 * 3_600_000);
    assert.equal(utc2, utc);
  });

  it("infers the year from ctx.now", () => {
    const a = attackOf(line, { zone: "UTC", now: Date.parse("2023-06-01T00:00:00Z") });
    const b = attackOf(line, { zone: "UTC", now: Date.parse("2024-06-01T00:00:00Z") });
    assert.equal(new Date(a.time).getUTCFullYear(), 2023);
    assert.equal(new Date(b.time).getUTCFullYear(), 2024);
  });

  it("infers the year afresh when ctx.now crosses a local midnight inside one UTC hour (+05:45)", () => {
    // Asia/Kathmandu midnight of 2024-12-30 is 2024-12-29T18:15Z. A line dated Dec 31 is more than a day
    // ahead of 23:59 on Dec 29 (so it is from 2023) but not of 00:01 on Dec 30 (so it is from 2024).
    const l = "[Dec 31 12:00:00] NOTICE[3301] manager.c: 192.0.2.77 failed to authenticate as 'admin'";
    const before = { zone: "Asia/Kathmandu", now: Date.parse("2024-12-29T18:14:00Z") };
    const after = { zone: "Asia/Kathmandu", now: Date.parse("2024-12-29T18:16:00Z") };
    for (const order of [
      [before, after],
      [after, before],
    ]) {
      const years = order.map((ctx) => new Date(attackOf(l, ctx).time).getUTCFullYear());
      assert.deepEqual(
        years,
        order.map((c) => (c === before ? 2023 : 2024)),
      );
    }
  });

  it("uses ctx.now for a line with no timestamp at all", () => {
    const now = Date.parse("2024-02-03T04:05:06.789Z");
    const ev = attackOf("NOTICE[566]: manager.c:3412 in authenticate: 192.0.2.77 failed to authenticate as 'admin'", {
      zone: "UTC",
      now,
    });
    assert.equal(ev.time, now);
  });

  it("is found by the auto classifier", () => {
    const ev = new LineClassifier("auto").parse(line, CTX);
    assert.equal(ev?.server, "asterisk");
  });
});

describe("asterisk parser: robustness", () => {
  it("returns null for empty, short, binary and non-Asterisk input", () => {
    for (const s of ["", "[", "[]", "\u0000".repeat(50), '\ud800\udc00\ud800 SecurityEvent="', "x".repeat(1000)]) {
      assert.equal(parse(s), null);
    }
  });

  it("ignores a trailing CR (CRLF logs) and trailing spaces", () => {
    const line = PJSIP("<sip:1@x>", "198.51.100.9:5060", "c", "Failed to authenticate");
    const a = attackOf(line);
    const b = attackOf(`${line}\r`);
    const c = attackOf(`${line}  `);
    assert.deepEqual([b.kind, b.remote, b.account], [a.kind, a.remote, a.account]);
    assert.deepEqual([c.kind, c.remote, c.account], [a.kind, a.remote, a.account]);
  });

  it("returns null instead of throwing for an unknown zone", () => {
    const line = "[May 14 10:21:32] NOTICE[3301] manager.c: 192.0.2.77 failed to authenticate as 'admin'";
    assert.equal(parse(line, { zone: "Not/AZone", now: CTX.now }), null);
  });

  it("handles a huge line full of markers without blowing up", () => {
    const chunk = ` failed for '192.0.2.1:5060' RemoteAddress="IPV4/UDP/192.0.2.1/5060" ) to extension '`;
    const huge = PJSIP(chunk.repeat(3000), "198.51.100.9:5060", chunk.repeat(3000), "Failed to authenticate");
    const ev = parse(huge);
    assert.equal(ev?.kind, "hostile");
    assert.ok(ev?.kind === "hostile" && ev.candidates.length <= 8);
  });
});
