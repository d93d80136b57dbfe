import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { leadingTimestamp, readTimestamp, splitSyslogPrefix } from "../../src/parsers/syslog-prefix.js";

const UTC = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };
const BERLIN = { zone: "Europe/Berlin", now: Date.parse("2024-12-31T00:00:00Z") };
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe("splitSyslogPrefix", () => {
  it("splits RSYSLOG_FileFormat with µs and an offset", () => {
    const p = splitSyslogPrefix("2024-05-14T12:21:08.020117+02:00 sip1 /usr/sbin/kamailio[2146]: WARNING: x", UTC);
    assert.deepEqual(p && { ...p, time: iso(p.time) }, {
      time: "2024-05-14T10:21:08.020Z",
      host: "sip1",
      tag: "/usr/sbin/kamailio",
      pid: 2146,
      message: "WARNING: x",
    });
  });

  it("reads a classic line in the context zone and infers the year", () => {
    const p = splitSyslogPrefix("May 14 10:21:08 sip1 kamailio: INFO: hello", BERLIN);
    assert.equal(iso(p?.time), "2024-05-14T08:21:08.000Z");
    assert.equal(p?.tag, "kamailio");
    assert.equal(p?.pid, null);
    assert.equal(p?.message, "INFO: hello");
  });

  it("puts a December line read in January into the previous year", () => {
    const ctx = { zone: "UTC", now: Date.parse("2025-01-01T00:10:00Z") };
    assert.equal(iso(splitSyslogPrefix("Dec 31 23:59:59 h t: m", ctx)?.time), "2024-12-31T23:59:59.000Z");
  });

  it("accepts a raw <PRI> datagram without a host", () => {
    const p = splitSyslogPrefix("<134>Nov 21 19:13:18 /usr/sbin/kamailio[24677]: INFO: x", UTC);
    assert.equal(p?.host, null);
    assert.equal(p?.tag, "/usr/sbin/kamailio");
    assert.equal(p?.pid, 24677);
    assert.equal(iso(p?.time), "2024-11-21T19:13:18.000Z");
  });

  it("reads the journald output modes", () => {
    const cases: [string, string][] = [
      ["2024-05-14T10:21:08+0000 h k[1]: m", "2024-05-14T10:21:08.000Z"],
      ["2024-05-14T10:21:08.5Z h k[1]: m", "2024-05-14T10:21:08.500Z"],
      ["May  4 10:21:08.020117 h k[1]: m", "2024-05-04T10:21:08.020Z"],
      ["Tue 2024-05-14 10:21:08 UTC h k[1]: m", "2024-05-14T10:21:08.000Z"],
      ["1715682068.020117 h k[1]: m", "2024-05-14T10:21:08.020Z"],
      ["2016-09-25T18:57:58.150982 www.srv.tld freeswitch[122921]: m", "2016-09-25T18:57:58.150Z"],
    ];
    for (const [line, want] of cases) {
      const p = splitSyslogPrefix(line, UTC);
      assert.equal(iso(p?.time), want, line);
      assert.equal(p?.message, "m", line);
    }
  });

  it("reads a short-full zone abbreviation other than UTC as local time", () => {
    const p = splitSyslogPrefix("Tue 2024-05-14 12:21:08 CEST h k[1]: m", BERLIN);
    assert.equal(iso(p?.time), "2024-05-14T10:21:08.000Z");
  });

  it("keeps the message verbatim, including leading spaces", () => {
    assert.equal(
      splitSyslogPrefix("May 14 10:21:08 h k[1]:  1(27432) WARNING: x", UTC)?.message,
      " 1(27432) WARNING: x",
    );
    assert.equal(splitSyslogPrefix("May 14 10:21:08 h k[1]:", UTC)?.message, "");
  });

  it("rejects lines that are not syslog lines", () => {
    for (const line of [
      "2024-05-14 10:21:07.112934 98.10% [WARNING] sofia_reg.c:1842 SIP auth challenge",
      "[2024-05-14 10:21:07] NOTICE[1843] chan_sip.c: Registration",
      " 1(27432) WARNING: pike",
      "May 14 10:21:08 host-without-tag",
      "Foo 14 10:21:08 h k[1]: m",
      "2024-13-14T10:21:08Z h k[1]: m",
      "2024-05-14T25:21:08Z h k[1]: m",
      "<1234>May 14 10:21:08 h k[1]: m",
      "<x>May 14 10:21:08 h k[1]: m",
      "",
    ]) {
      assert.equal(splitSyslogPrefix(line, UTC), null, line);
    }
  });
});

describe("leadingTimestamp / readTimestamp", () => {
  it("reads ISO with a space, bracketed dates and syslog dates at the start", () => {
    assert.deepEqual(leadingTimestamp("2024-05-14 10:21:08 rest", UTC), {
      time: Date.parse("2024-05-14T10:21:08Z"),
      end: 19,
    });
    assert.deepEqual(leadingTimestamp("[2024-05-14 10:21:08] rest", UTC), {
      time: Date.parse("2024-05-14T10:21:08Z"),
      end: 21,
    });
    assert.equal(iso(leadingTimestamp("May 14 10:21:08 x", BERLIN)?.time), "2024-05-14T08:21:08.000Z");
    assert.equal(leadingTimestamp("[2024-05-14 10:21:08 rest", UTC), null);
    assert.equal(leadingTimestamp("x 2024-05-14 10:21:08", UTC), null);
  });

  it("refuses a space separator when asked to", () => {
    assert.equal(readTimestamp("2024-05-14 10:21:08 x", UTC, 0, false), null);
    assert.ok(readTimestamp("2024-05-14T10:21:08 x", UTC, 0, false));
  });

  it("applies the offset of the line, not the context zone", () => {
    assert.equal(iso(readTimestamp("2024-05-14T10:21:08-0530", BERLIN)?.time), "2024-05-14T15:51:08.000Z");
    assert.equal(iso(readTimestamp("2024-05-14T10:21:08+02", BERLIN)?.time), "2024-05-14T08:21:08.000Z");
  });
});
