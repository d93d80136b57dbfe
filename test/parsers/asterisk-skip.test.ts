import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { asteriskParser } from "../../src/parsers/asterisk.js";
import { asteriskRoute, asteriskSkipLine } from "../../src/parsers/asterisk-skip.js";
import { freeswitchParser } from "../../src/parsers/freeswitch.js";
import { ROUTE_DIRECT, ROUTE_SKIP } from "../../src/parsers/index.js";
import { kamailioParser } from "../../src/parsers/kamailio.js";

const skip = (line: string) => {
  const b = Buffer.from(line);
  return asteriskSkipLine(b, 0, b.length);
};

describe("asteriskSkipLine", () => {
  it("skips VERBOSE, DEBUG, TRACE and DTMF file-channel lines", () => {
    assert.ok(skip("[2024-05-14 10:21:07] VERBOSE[4011][C-00000001] pbx.c: Executing [200@from-internal:1]"));
    assert.ok(skip("[May  4 09:01:02] DEBUG[2191] chan_sip.c: something failed for '198.51.100.7:5060'"));
    assert.ok(skip("[May  4 09:01:02] TRACE[2191] res_pjsip_session.c: x"));
    assert.ok(skip("[2024-05-14 10:21:07.123] DTMF[4011] channel.c: DTMF end"));
  });
  it("never skips lines the parser reads, nor lines of other formats", () => {
    for (const l of [
      "[2024-05-14 10:21:07] NOTICE[2191] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:1@x>' failed for '198.51.100.7:5060' (callid: 1) - Failed to authenticate",
      '[2024-05-14 10:21:07] SECURITY[1843] res_security_log.c: SecurityEvent="InvalidPassword"',
      "[2024-05-14 10:21:07] WARNING[2911] chan_iax2.c: Host 198.51.100.7:4569 failed to authenticate as 100",
      "May 14 10:21:07 pbx asterisk[123]: VERBOSE[456]: pbx.c:1 in x: y",
      "2024-05-14T10:21:08.020117+00:00 sip1 /usr/sbin/kamailio[2146]: NOTICE: IPS: auth-failed",
      "[VERBOSE",
      "",
    ])
      assert.ok(!skip(l), l);
  });
  it("reads only the line's own bytes, whatever follows it in the buffer", () => {
    for (const l of ["[x] VERBOSE[", "[x] NOTICE[1]", "[May 4 09:01:02] DEBUG[", "[2024-05-14 10:21:07] TRACE["]) {
      const alone = Buffer.from(l);
      const more = Buffer.from(`${l}\n${"]".repeat(30)} VERBOSE[1] x`);
      assert.equal(asteriskRoute(more, 0, l.length), asteriskRoute(alone, 0, l.length), l);
    }
  });
  it("agrees with the parser: a skipped line never parses", () => {
    const line = "[2024-05-14 10:21:07] VERBOSE[3288] manager.c: 198.51.100.7 failed to authenticate as 'admin'";
    assert.ok(skip(line));
    assert.equal(asteriskParser.parse(line, { zone: "UTC", now: Date.now() }), null);
  });
});

describe("asteriskRoute: its answers never lose an event", () => {
  const ctx = { zone: "UTC", now: Date.UTC(2024, 11, 31) };
  const parsers = [asteriskParser, kamailioParser, freeswitchParser];
  const dates = [
    "2024-05-14 10:21:07",
    "2024-05-14 10:21:07.123",
    "May  4 09:01:02",
    "May 14 09:01:02",
    "May 4 09:01:02",
    "2024-05-14T10:21:07",
  ];
  const levels = [
    "VERBOSE",
    "DEBUG",
    "TRACE",
    "DTMF",
    "NOTICE",
    "WARNING",
    "SECURITY",
    "ERROR",
    "VERBOSE ",
    "WARN",
    "x",
  ];
  const bodies = [
    " failed for '198.51.100.7:5060' (callid: 1) - Failed to authenticate",
    "manager.c: 198.51.100.7 failed to authenticate as 'admin'",
    "res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:1@x>' failed for '198.51.100.7:5060' (callid: 1) - Failed to authenticate",
    'res_security_log.c: SecurityEvent="InvalidPassword",EventTV="2024-05-14T10:21:07.000+0000",Severity="Error",Service="SIP",EventVersion="2",AccountID="1",SessionID="0x1",LocalAddress="IPV4/UDP/10.0.0.1/5060",RemoteAddress="IPV4/UDP/198.51.100.7/5060",Challenge="1",ReceivedChallenge="1",ReceivedHash="1"',
    "sofia_reg.c:1690 SIP auth failure (REGISTER) on sofia profile 'internal' for [1000@x] from ip 198.51.100.7",
    "[SOFIA] sofia_reg.c:1690 SIP auth failure (REGISTER) on sofia profile 'internal' for [1000@x] from ip 198.51.100.7",
  ];
  const line = fc
    .tuple(
      fc.constantFrom(...dates),
      fc.constantFrom(...levels),
      fc.constantFrom("[3288] ", "[3288][C-0000001b] ", " [3288] ", "[3288]: ", "] "),
      fc.constantFrom(...bodies),
      fc.array(fc.tuple(fc.nat(60), fc.constantFrom("]", "[", " ", "V", "x")), { maxLength: 3 }),
    )
    .map(([d, lv, lwp, body, edits]) => {
      let s = `[${d}] ${lv}${lwp}${body}`;
      for (const [at, ch] of edits) s = s.slice(0, at) + ch + s.slice(at + 1);
      return s;
    });
  it("SKIP: no parser yields an event; DIRECT: only the Asterisk parser can", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          line,
          fc.string({ maxLength: 60 }).map((s) => `[${s}`),
        ),
        (l) => {
          const b = Buffer.from(l);
          const r = asteriskRoute(b, 0, b.length);
          // Only the line's own bytes count, whatever follows it in the buffer.
          const more = Buffer.from(`${l}\n${"]".repeat(30)} VERBOSE[1] x`);
          assert.equal(asteriskRoute(more, 0, b.length), r, l);
          if (r === ROUTE_SKIP) for (const p of parsers) assert.equal(p.parse(l, ctx), null, `${p.server}: ${l}`);
          if (r === ROUTE_DIRECT)
            for (const p of parsers.slice(1)) assert.equal(p.parse(l, ctx), null, `${p.server}: ${l}`);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
