import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { asteriskParser } from "../../src/parsers/asterisk.js";
import { asteriskSkipLine } from "../../src/parsers/asterisk-skip.js";

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
  it("agrees with the parser: a skipped line never parses", () => {
    const line = "[2024-05-14 10:21:07] VERBOSE[3288] manager.c: 198.51.100.7 failed to authenticate as 'admin'";
    assert.ok(skip(line));
    assert.equal(asteriskParser.parse(line, { zone: "UTC", now: Date.now() }), null);
  });
});
