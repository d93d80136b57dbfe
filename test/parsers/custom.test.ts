import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CustomPatternConfig, configSchema } from "../../src/config/schema.js";
import { isSipwardenError } from "../../src/core/errors.js";
import { toRecord } from "../../src/core/events.js";
import { createCustomParser } from "../../src/parsers/custom.js";
import { LineClassifier } from "../../src/parsers/index.js";

const CTX = { zone: "UTC", now: Date.parse("2024-06-01T00:00:00Z") };

/** Patterns go through the real config schema, so defaults (service) are what an operator gets. */
function patterns(custom: unknown[]): CustomPatternConfig[] {
  return configSchema.parse({ parsers: { custom } }).parsers.custom;
}

const OPENSIPS = {
  id: "opensips-auth",
  regex: "auth failed for (?<user>\\S+) ua='(?<ua>[^']*)' from (?<ip>[0-9a-fA-F:.]+):(?<port>\\d+)$",
  kind: "auth_failed",
  needle: "auth failed for ",
};

function record(line: string, custom: unknown[] = [OPENSIPS]) {
  const ev = createCustomParser(patterns(custom)).parse(line, CTX);
  return ev && toRecord(ev);
}

describe("createCustomParser", () => {
  it("yields the configured kind with ip, port, account and user agent", () => {
    const r = record("2024-05-14T10:21:08.020Z opensips[812]: auth failed for 1001 ua='Z 5.6' from 198.51.100.7:5062");
    assert.deepEqual(r && { ...r, line: undefined }, {
      time: "2024-05-14T10:21:08.020Z",
      server: "custom",
      ip: "198.51.100.7",
      port: 5062,
      transport: null,
      kind: "auth_failed",
      service: "custom",
      account: "1001",
      userAgent: "Z 5.6",
      pattern: "custom.opensips-auth",
      line: undefined,
    });
  });

  it("normalises the address and never accepts a name", () => {
    assert.equal(record("auth failed for a ua='' from 2001:DB8:0:0::7:5060")?.ip, "2001:db8::7");
    assert.equal(record("auth failed for a ua='' from ::ffff:198.51.100.7:5060")?.ip, "198.51.100.7");
    const named = { id: "named", kind: "auth_failed", regex: "auth failed from (?<ip>\\S+)$" };
    assert.equal(record("auth failed from sip.example.com", [named]), null);
    assert.equal(record("auth failed from 198.51.100.300", [named]), null);
    assert.equal(record("auth failed from [2001:db8::7]", [named])?.ip, "2001:db8::7");
  });

  it("drops a port that is out of range but keeps the event", () => {
    const r = record("auth failed for a ua='' from 198.51.100.7:70000");
    assert.equal(r?.ip, "198.51.100.7");
    assert.equal(r?.port, null);
  });

  it("takes the time from a leading ISO, syslog or bracketed timestamp, else from ctx.now", () => {
    const line = "auth failed for a ua='' from 198.51.100.7:5060";
    assert.equal(record(`May 14 10:21:08 pbx opensips[1]: ${line}`)?.time, "2024-05-14T10:21:08.000Z");
    assert.equal(record(`2024-05-14 10:21:08 ${line}`)?.time, "2024-05-14T10:21:08.000Z");
    assert.equal(record(`[2024-05-14 10:21:08] ${line}`)?.time, "2024-05-14T10:21:08.000Z");
    assert.equal(record(`2024-05-14T12:21:08+02:00 ${line}`)?.time, "2024-05-14T10:21:08.000Z");
    assert.equal(record(line)?.time, "2024-06-01T00:00:00.000Z");
    const berlin = createCustomParser(patterns([OPENSIPS])).parse(`May 14 10:21:08 ${line}`, {
      zone: "Europe/Berlin",
      now: CTX.now,
    });
    assert.equal(berlin && new Date(berlin.time).toISOString(), "2024-05-14T08:21:08.000Z");
  });

  it("skips a pattern whose needle is absent, and tries the patterns in order", () => {
    const first = { id: "a", regex: "from (?<ip>[\\d.]+)$", kind: "scanner", needle: "SCAN" };
    const second = { id: "b", regex: "from (?<ip>[\\d.]+)$", kind: "flood", service: "edge" };
    const p = createCustomParser(patterns([first, second]));
    const scan = p.parse("SCAN from 198.51.100.7", CTX);
    const flood = p.parse("burst from 198.51.100.7", CTX);
    assert.equal(scan?.pattern, "custom.a");
    assert.equal(scan?.kind, "scanner");
    assert.equal(flood?.pattern, "custom.b");
    assert.equal(flood?.service, "edge");
    assert.deepEqual(p.patterns, ["custom.a", "custom.b"]);
  });

  it("lists needles only when every pattern has one", () => {
    assert.deepEqual(createCustomParser(patterns([OPENSIPS])).needles, ["auth failed for "]);
    const noNeedle = { id: "x", regex: "(?<ip>[\\d.]+)$", kind: "flood" };
    const p = createCustomParser(patterns([OPENSIPS, noNeedle]));
    assert.deepEqual(p.needles, [""]);
    assert.ok(p.needles.every((n) => "any line".includes(n)));
    assert.deepEqual(createCustomParser([]).needles, []);
  });

  it("makes a hostile event (no remote) for kind hostile", () => {
    const ev = createCustomParser(
      patterns([{ id: "h", regex: "two addresses .* (?<ip>[\\d.]+)$", kind: "hostile" }]),
    ).parse("two addresses 192.0.2.1 198.51.100.7", CTX);
    assert.equal(ev?.kind, "hostile");
    assert.equal(ev?.remote, undefined);
    assert.deepEqual(ev?.kind === "hostile" ? ev.candidates : null, ["198.51.100.7"]);
  });

  it("yields an info kind as an info event", () => {
    const ev = createCustomParser(
      patterns([{ id: "ok", regex: "login ok from (?<ip>[\\d.]+)$", kind: "auth_ok" }]),
    ).parse("login ok from 192.0.2.10", CTX);
    assert.equal(ev?.kind, "auth_ok");
    assert.equal(ev?.remote?.address, "192.0.2.10");
  });

  it("works in front of the built-in parsers in a LineClassifier", () => {
    const c = new LineClassifier("auto", [createCustomParser(patterns([OPENSIPS]))]);
    const ev = c.parse("auth failed for 7 ua='' from 198.51.100.9:5060", CTX);
    assert.equal(ev?.pattern, "custom.opensips-auth");
    assert.ok(c.needles.includes("auth failed for "));
  });

  it("never throws, whatever the line", () => {
    const p = createCustomParser(patterns([OPENSIPS, { id: "any", regex: "(?<ip>.+)", kind: "flood" }]));
    for (const line of ["", "\u0000", "x".repeat(100_000), "auth failed for \uD800 ua='' from 1.2.3.4:1"]) {
      assert.doesNotThrow(() => p.parse(line, CTX));
    }
  });
});

describe("createCustomParser validation", () => {
  function rejects(custom: unknown[], path: string, message: RegExp): void {
    assert.throws(
      () => createCustomParser(patterns(custom)),
      (e: unknown) => isSipwardenError(e, "PATTERN_INVALID") && e.path === path && message.test(e.message),
    );
  }

  it("rejects a regex that does not compile", () => {
    rejects([OPENSIPS, { id: "bad", regex: "from (?<ip>[\\d.+", kind: "flood" }], "parsers.custom[1].regex", /compile/);
  });

  it("rejects a regex without an ip group", () => {
    rejects([{ id: "noip", regex: "from (?<addr>[\\d.]+)", kind: "flood" }], "parsers.custom[0].regex", /\(\?<ip>/);
    rejects([{ id: "unnamed", regex: "from ([\\d.]+)", kind: "flood" }], "parsers.custom[0].regex", /\(\?<ip>/);
  });

  it("rejects unknown group names and a regex that matches an empty line", () => {
    rejects([{ id: "g", regex: "(?<ip>[\\d.]+) (?<host>\\S+)", kind: "flood" }], "parsers.custom[0].regex", /host/);
    rejects([{ id: "e", regex: "(?<ip>[\\d.]*)", kind: "flood" }], "parsers.custom[0].regex", /empty/);
  });

  it("rejects a duplicate id", () => {
    rejects([OPENSIPS, OPENSIPS], "parsers.custom[1].id", /duplicate/);
  });
});
