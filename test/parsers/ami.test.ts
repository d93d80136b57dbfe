import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type SecurityEvent, toRecord } from "../../src/core/events.js";
import { DetectionEngine } from "../../src/detect/engine.js";
import { loadRules } from "../../src/detect/rules.js";
import { amiParser, attemptKey, isSameAttempt, parseEventTv } from "../../src/parsers/ami.js";
import { ASTERISK_SECURITY_EVENTS } from "../../src/parsers/asterisk-security-events.js";
import { AmiFramer, serializeMessage } from "../../src/sources/ami-framing.js";
import { sampleSecurityEvents, securityEvent } from "../helpers/ami-server.js";

const CTX = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };

/** Frames raw AMI bytes and serialises each message the way the AMI source does. */
function records(raw: string): string[] {
  const out: string[] = [];
  const f = new AmiFramer({ onMessage: (m) => out.push(serializeMessage(m)) });
  f.push(Buffer.from(raw, "latin1"));
  return out;
}

function parse(raw: string): SecurityEvent | null {
  const [text] = records(raw);
  assert.ok(text !== undefined, "no message framed");
  return amiParser.parse(text, CTX);
}

type Ie = [string, string];
const COMMON = (account: string | null, remote = "IPV4/UDP/198.51.100.7/5060"): Ie[] => [
  ["EventTV", "2024-05-14T10:21:40.250+0200"],
  ["Severity", "Error"],
  ["Service", "PJSIP"],
  ["EventVersion", "1"],
  ...(account === null ? [] : [["AccountID", account] as Ie]),
  ["SessionID", "c0ffee@198.51.100.7"],
  ["LocalAddress", "IPV4/UDP/10.20.0.5/5060"],
  ["RemoteAddress", remote],
];

/**
 * The seven types the sample lacks, built from the IE table in formats.md §1.1: common IEs,
 * then the required extras, then optional ones.
 */
const BUILT: Record<string, { ies: Ie[]; kind: string; detail?: string }> = {
  SessionLimit: { ies: [...COMMON("1001"), ["Module", "res_pjsip"]], kind: "limit", detail: "Module=res_pjsip" },
  MemoryLimit: { ies: COMMON("1001"), kind: "limit" },
  LoadAverageLimit: { ies: COMMON("1001"), kind: "limit" },
  RequestNotSupported: {
    ies: [...COMMON("1001"), ["RequestType", "PUBLISH"]],
    kind: "bad_request",
    detail: "RequestType=PUBLISH",
  },
  AuthMethodNotAllowed: {
    ies: [...COMMON("1001"), ["AuthMethod", "Basic"]],
    kind: "bad_request",
    detail: "AuthMethod=Basic",
  },
  UnexpectedAddress: {
    ies: [
      ...COMMON("1001").map(([k, v]): Ie => (k === "EventVersion" ? [k, "2"] : [k, v])),
      ["ExpectedAddress", "IPV4/UDP/192.0.2.10/5060"],
    ],
    kind: "acl_denied",
    detail: "ExpectedAddress=IPV4/UDP/192.0.2.10/5060",
  },
  InvalidTransport: {
    ies: [...COMMON("1001"), ["AttemptedTransport", "TCP"]],
    kind: "bad_request",
    detail: "AttemptedTransport=TCP",
  },
};

describe("amiParser: the recorded sample", () => {
  const events = sampleSecurityEvents();
  const expected: Record<string, unknown>[] = [
    { kind: "auth_ok", ip: "127.0.0.1", port: 49822, transport: "tcp", service: "AMI", account: "ips" },
    { kind: "unknown_account", ip: "203.0.113.45", port: 5087, transport: "udp", service: "PJSIP", account: "100" },
    { kind: "challenge_sent", ip: "203.0.113.45", account: "<unknown>" },
    { kind: "unknown_account", ip: "203.0.113.45", account: "101" },
    { kind: "challenge_sent", ip: "203.0.113.45" },
    { kind: "unknown_account", ip: "203.0.113.45", account: "102" },
    { kind: "challenge_sent", ip: "203.0.113.45" },
    { kind: "unknown_account", ip: "203.0.113.45", account: "admin" },
    { kind: "auth_failed", ip: "203.0.113.45", account: "<unknown>" },
    { kind: "challenge_sent", ip: "198.51.100.23", account: "1001" },
    { kind: "auth_failed", ip: "198.51.100.23", port: 5060, account: "1001", time: "2024-05-14T10:21:15.095Z" },
    { kind: "challenge_sent", ip: "198.51.100.23" },
    { kind: "auth_failed", ip: "198.51.100.23" },
    { kind: "challenge_sent", ip: "198.51.100.23" },
    { kind: "auth_failed", ip: "198.51.100.23" },
    { kind: "unknown_account", ip: "2001:db8::66", port: 53411, transport: "tcp", account: "1000" },
    { kind: "acl_denied", ip: "198.51.100.99", account: "1002" },
    { kind: "auth_ok", ip: "10.20.0.31", account: "1003" },
    { kind: "bad_request", ip: "192.0.2.77", port: 41922, service: "AMI", account: null },
    { kind: "unknown_account", ip: "192.0.2.77", service: "AMI", account: "admin" },
    { kind: "auth_failed", ip: "192.0.2.77", port: 41930, account: "monitor" },
    { kind: "auth_failed", ip: "192.0.2.77", port: 41938, account: null },
    { kind: "bad_request", ip: "192.0.2.77", port: 41946, account: null },
  ];

  it("has the events this test expects", () => assert.equal(events.length, expected.length));

  events.forEach((raw, i) => {
    const name = /^Event: (\w+)/.exec(raw)![1]!;
    it(`#${i + 1} ${name}`, () => {
      const ev = parse(raw);
      assert.ok(ev, "no event");
      const rec = toRecord(ev) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(expected[i]!)) assert.deepEqual(rec[k], v, `field ${k}`);
      assert.equal(rec.pattern, `asterisk.ami.${name}`);
      assert.equal(rec.server, "asterisk");
      assert.ok(amiParser.patterns.includes(ev.pattern));
      // The raw CRLF capture gives the same event as the serialised record.
      const direct = amiParser.parse(raw.trimEnd(), CTX);
      assert.deepEqual(direct && { ...toRecord(direct), line: "" }, { ...rec, line: "" });
    });
  });

  it("keeps the details an operator needs", () => {
    const byName = (n: string) => events.map(parse).find((e) => e?.pattern === `asterisk.ami.${n}`)!;
    assert.equal(byName("FailedACL").detail, "ACLName=not_match_endpoint_acl");
    assert.equal(byName("RequestNotAllowed").detail, "RequestType=Action: Command");
    assert.equal(byName("SuccessfulAuth").detail, "UsingPassword=0");
    assert.equal(byName("InvalidAccountID").sessionId, "1654913352");
  });
});

describe("amiParser: the types missing from the sample", () => {
  for (const [name, b] of Object.entries(BUILT)) {
    it(name, () => {
      const ev = parse(securityEvent(name, b.ies));
      assert.ok(ev && ev.kind !== "hostile");
      assert.equal(ev.kind, b.kind);
      assert.equal(ev.remote.address, "198.51.100.7");
      assert.equal(ev.remote.port, 5060);
      assert.equal(ev.pattern, `asterisk.ami.${name}`);
      assert.equal(ev.time, Date.parse("2024-05-14T08:21:40.250Z"), "EventTV offset +0200 applied");
      assert.equal(ev.sessionId, "c0ffee@198.51.100.7");
      assert.equal(ev.detail, b.detail);
    });
  }

  it("covers all 15 types, each with its own pattern id", () => {
    const sampleNames = new Set(sampleSecurityEvents().map((e) => /^Event: (\w+)/.exec(e)![1]!));
    const all = new Set([...sampleNames, ...Object.keys(BUILT)]);
    assert.deepEqual([...all].sort(), Object.keys(ASTERISK_SECURITY_EVENTS).sort());
    assert.equal(amiParser.patterns.length, 15);
    assert.equal(new Set(amiParser.patterns).size, 15);
  });

  it("maps chan_sip's FailedACL no_extension_match to no_extension", () => {
    const ev = parse(
      securityEvent("FailedACL", [
        ...COMMON("9999").map(([k, v]): Ie => (k === "Service" ? [k, "SIP"] : [k, v])),
        ["ACLName", "no_extension_match"],
      ]),
    );
    assert.equal(ev?.kind, "no_extension");
    assert.equal(ev?.service, "SIP");
  });
});

describe("amiParser: what it refuses", () => {
  it("returns null for other events, responses and garbage", () => {
    assert.equal(parse("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"), null);
    assert.equal(parse("Response: Success\r\nActionID: 1\r\nPing: Pong\r\n\r\n"), null);
    assert.equal(amiParser.parse("", CTX), null);
    assert.equal(amiParser.parse("hello world", CTX), null);
    assert.equal(amiParser.parse("Event: toString\nRemoteAddress: IPV4/UDP/198.51.100.7/5060", CTX), null);
  });

  it("returns null without a strict RemoteAddress", () => {
    for (const bad of [
      "198.51.100.7",
      "IPV4/UDP/198.51.100.7",
      "IPV4/UDP/198.51.100.7/99999",
      "IPV4/SCTP/198.51.100.7/5060",
      "IPV4/UDP/host.example/5060",
      "IPV4/UDP/198.51.100.7/5060 ",
      "",
    ]) {
      assert.equal(parse(securityEvent("InvalidAccountID", COMMON("1", bad))), null, bad);
    }
    const noRemote = COMMON("1").filter(([k]) => k !== "RemoteAddress");
    assert.equal(parse(securityEvent("InvalidAccountID", noRemote)), null);
  });

  it("accepts a RemoteAddress without a transport", () => {
    const ev = parse(securityEvent("InvalidAccountID", COMMON("1", "IPV4/198.51.100.7/5060")));
    assert.ok(ev && ev.kind !== "hostile");
    assert.equal(ev.remote.transport, undefined);
  });

  it("treats a record with two RemoteAddress lines as hostile", () => {
    const ies: Ie[] = [...COMMON("1"), ["RemoteAddress", "IPV4/UDP/192.0.2.1/5060"]];
    const ev = parse(securityEvent("InvalidPassword", ies));
    assert.ok(ev);
    assert.equal(ev.kind, "hostile");
    assert.equal(ev.remote, undefined);
    if (ev.kind === "hostile")
      assert.deepEqual(ev.candidates, ["IPV4/UDP/198.51.100.7/5060", "IPV4/UDP/192.0.2.1/5060"]);
  });

  it("takes the address only from RemoteAddress, whatever the attacker puts elsewhere", () => {
    const noise = fc.string({ maxLength: 60 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(
      fc.property(noise, noise, noise, fc.ipV4(), (account, session, request, ip) => {
        const ies: Ie[] = [
          ["EventTV", "2024-05-14T10:21:40.250+0000"],
          ["Severity", "Error"],
          ["Service", "AMI"],
          ["EventVersion", "1"],
          ["AccountID", account],
          ["SessionID", session],
          ["LocalAddress", "IPV4/TCP/0.0.0.0/5038"],
          ["RemoteAddress", `IPV4/TCP/${ip}/41922`],
          ["RequestType", `Action: ${request}`],
        ];
        const ev = parse(securityEvent("RequestNotAllowed", ies));
        assert.ok(ev && ev.kind === "bad_request", JSON.stringify(ies));
        assert.equal(ev.remote.address, ip);
        assert.equal(ev.account, account === "" ? undefined : account);
      }),
      { numRuns: 300 },
    );
  });
});

describe("amiParser: time", () => {
  it("reads EventTV in both formats", () => {
    assert.equal(parseEventTv("2024-05-14T10:21:07.112+0000"), Date.parse("2024-05-14T10:21:07.112Z"));
    assert.equal(parseEventTv("2024-05-14T10:21:07.112-0530"), Date.parse("2024-05-14T15:51:07.112Z"));
    assert.equal(parseEventTv("2024-05-14T10:21:07+02:00"), Date.parse("2024-05-14T08:21:07Z"));
    assert.equal(parseEventTv("1715682067-213377"), 1715682067213);
    assert.ok(Number.isNaN(parseEventTv("yesterday")));
    assert.ok(Number.isNaN(parseEventTv("2024-13-14T10:21:07.112+0000")));
  });

  it("falls back to the AMI Timestamp, then to ctx.now", () => {
    const ies = COMMON("1").filter(([k]) => k !== "EventTV");
    const withTs = securityEvent("InvalidAccountID", [["Timestamp", "1715682058.212345"], ...ies]);
    assert.equal(parse(withTs)?.time, 1715682058212);
    assert.equal(parse(securityEvent("InvalidAccountID", ies))?.time, CTX.now);
  });
});

describe("one PJSIP attempt reported twice", () => {
  const events = sampleSecurityEvents()
    .map(parse)
    .filter((e): e is SecurityEvent => e !== null);

  it("InvalidAccountID and ChallengeResponseFailed for one request share SessionID and address", () => {
    const pair = events.filter((e) => e.sessionId === "3a6f0c1e9b2d4e7f");
    assert.deepEqual(
      pair.map((e) => e.kind),
      ["unknown_account", "auth_failed"],
    );
    assert.equal(attemptKey(pair[0]!), "3a6f0c1e9b2d4e7f|203.0.113.45");
    assert.equal(isSameAttempt(pair[0]!, pair[1]!), true);
  });

  it("different requests from the same address are different attempts", () => {
    const invalid = events.filter((e) => e.kind === "unknown_account" && e.remote?.address === "203.0.113.45");
    assert.equal(invalid.length, 4);
    for (let i = 1; i < invalid.length; i++) assert.equal(isSameAttempt(invalid[0]!, invalid[i]!), false);
    // Same SessionID from another address (a Call-ID is attacker-chosen) is not the same attempt.
    const a = events.find((e) => e.sessionId === "3a6f0c1e9b2d4e7f")!;
    const moved = { ...a, remote: { address: "198.51.100.1", port: 5060 } } as SecurityEvent;
    assert.equal(isSameAttempt(a, moved), false);
    // Nor is a repeat of the same SessionID much later.
    assert.equal(isSameAttempt(a, { ...a, time: a.time + 5000 }), false);
  });

  it("the detection engine counts the pair as one attempt", () => {
    const pair = events.filter((e) => e.sessionId === "3a6f0c1e9b2d4e7f");
    const engine = new DetectionEngine(loadRules(), { seed: 1 });
    for (const e of pair) engine.observe(e);
    assert.equal(engine.stats().attacks, 2);
    assert.equal(engine.stats().duplicates, 1);
  });

  it("an event without a SessionID never pairs", () => {
    const a = events[1]!;
    const { sessionId: _s, ...bare } = a;
    assert.equal(attemptKey(bare as SecurityEvent), null);
    assert.equal(isSameAttempt(bare as SecurityEvent, bare as SecurityEvent), false);
  });
});
