import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { FREESWITCH_PATTERNS, freeswitchParser } from "../../src/parsers/freeswitch.js";

const CTX = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };
const PREFIX = "2024-05-14 10:21:15.702839 97.53% [WARNING] sofia_reg.c:1787 ";

function parse(line: string, ctx = CTX): SecurityEvent | null {
  return freeswitchParser.parse(line, ctx);
}

describe("freeswitch parser", () => {
  it("lists unique pattern ids and needles", () => {
    assert.equal(new Set(freeswitchParser.patterns).size, freeswitchParser.patterns.length);
    assert.deepEqual([...freeswitchParser.patterns].sort(), Object.values(FREESWITCH_PATTERNS).sort());
    assert.ok(freeswitchParser.patterns.every((p) => p.startsWith("freeswitch.sofia.")));
    assert.ok(freeswitchParser.needles.length > 0);
  });

  it("fills service, account, detail and keeps microseconds down to milliseconds", () => {
    const ev = parse(
      `${PREFIX}SIP auth failure (INVITE) on sofia profile 'external' for [0097142389920@10.20.0.5] from ip 203.0.113.45`,
    );
    assert.ok(ev && ev.kind === "auth_failed");
    assert.equal(ev.server, "freeswitch");
    assert.equal(ev.service, "sofia");
    assert.equal(ev.account, "0097142389920");
    assert.equal(ev.detail, "INVITE profile=external");
    assert.equal(ev.time, Date.parse("2024-05-14T10:21:15.702Z"));
    assert.deepEqual(ev.remote, { address: "203.0.113.45" });
  });

  it("reads local time in the context zone, with the DST change", () => {
    const line = (d: string) =>
      `${d} 97.53% [WARNING] sofia_reg.c:1787 SIP auth failure (REGISTER) on sofia profile 'p' for [1@h] from ip 198.51.100.1`;
    const zone = { zone: "Europe/Berlin", now: CTX.now };
    assert.equal(parse(line("2024-03-31 01:59:59.000000"), zone)?.time, Date.parse("2024-03-31T00:59:59Z"));
    assert.equal(parse(line("2024-03-31 03:00:00.000000"), zone)?.time, Date.parse("2024-03-31T01:00:00Z"));
  });

  it("leaves the account unset for an empty user and splits at the last @", () => {
    assert.equal(
      parse(`${PREFIX}SIP auth failure (REGISTER) on sofia profile 'p' for [@h] from ip 198.51.100.1`)?.account,
      undefined,
    );
    assert.equal(
      parse(`${PREFIX}SIP auth failure (REGISTER) on sofia profile 'p' for [a@b@[2001:db8::5]] from ip 198.51.100.1`)
        ?.account,
      "a@b",
    );
  });

  it("takes the address from the end even when the attacker text holds line separators", () => {
    const ev = parse(
      `${PREFIX}SIP auth failure (REGISTER) on sofia profile 'p' for [a\u2028b\u0085c\r@h] from ip 198.51.100.1`,
    );
    assert.equal(ev?.kind, "auth_failed");
    assert.equal(ev?.remote?.address, "198.51.100.1");
  });

  it("names the ACL in the detail", () => {
    assert.equal(parse(`${PREFIX}IP 198.51.100.99 Rejected by register acl "domains"`)?.detail, "acl=domains");
    assert.equal(
      parse(`${PREFIX}IP 198.51.100.99 Rejected by user acl [a,b] and no proxy acl present`)?.detail,
      "acl=a,b",
    );
    assert.equal(parse(`${PREFIX}IP 198.51.100.99 Rejected by register acl`)?.detail, undefined);
  });

  it("yields hostile events with every planted candidate", () => {
    const ev = parse(
      `${PREFIX}Can't find user [1] from 2001:db8::50] from 198.51.100.7`.replace(
        "sofia_reg.c:1787",
        "sofia_reg.c:3210",
      ),
    );
    assert.equal(ev?.kind, "hostile");
    assert.equal(ev?.pattern, FREESWITCH_PATTERNS.userNotFound);
    assert.deepEqual(ev?.kind === "hostile" ? ev.candidates : null, ["2001:db8::50", "198.51.100.7"]);
  });

  it("rejects a bad date or a line that is not from FreeSWITCH", () => {
    const body = "SIP auth failure (REGISTER) on sofia profile 'p' for [1@h] from ip 198.51.100.1";
    assert.equal(parse(`2024-13-14 10:21:15.702839 [WARNING] sofia_reg.c:1 ${body}`), null);
    assert.equal(parse(`2024-05-14 10:61:15.702839 [WARNING] sofia_reg.c:1 ${body}`), null);
    assert.equal(parse(`2024-05-14 10:21:15.702839 [VERBOSE] sofia_reg.c:1 ${body}`), null);
    assert.equal(parse(`[2024-05-14 10:21:15] NOTICE[1] chan_sip.c: ${body}`), null);
  });

  it("never throws and stays cheap on long hostile lines", () => {
    const user = "] from ip 192.0.2.50 ".repeat(10000);
    assert.equal(
      parse(`${PREFIX}SIP auth failure (REGISTER) on sofia profile 'p' for [${user}] from ip 198.51.100.1`)?.kind,
      "hostile",
    );
    const brackets = "[".repeat(50000);
    assert.equal(
      parse(`${PREFIX}SIP auth failure (REGISTER) on sofia profile 'p' for [${brackets}] from ip 198.51.100.1`)?.kind,
      "auth_failed",
    );
    for (const line of [
      "",
      "\u0000",
      "SIP auth ",
      "Can't find user [",
      " Rejected by ",
      `${PREFIX}IP  Rejected by acl ""`,
    ]) {
      assert.doesNotThrow(() => parse(line));
    }
  });
});
