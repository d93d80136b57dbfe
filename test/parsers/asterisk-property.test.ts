/**
 * Property tests for the Asterisk parser: it never throws, any address it names is written in the
 * line, an address planted in an attacker-controlled field never comes out, the memoised paths
 * agree with the shared helpers, and the results do not depend on the order of calls.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { normalizeIp, splitHostPort } from "../../src/core/address.js";
import { toRecord } from "../../src/core/events.js";
import { asteriskParser } from "../../src/parsers/asterisk.js";
import { hostPort, securityAddress } from "../../src/parsers/asterisk-event.js";
import { parseAsteriskAddress } from "../../src/parsers/asterisk-security-events.js";
import { triesStart } from "../../src/parsers/asterisk-sip.js";
import { readFixture } from "../helpers/fixture-file.js";
import { FIXTURES } from "../helpers/paths.js";

const CTX = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };
const DIR = join(FIXTURES, "logs", "asterisk");
const REAL_LINES = readdirSync(DIR)
  .filter((f) => f.endsWith(".log"))
  .flatMap((f) => readFixture(join(DIR, f)).map((c) => c.line));
const RUNS = 400;

/** Every IP literal the text contains (bare, bracketed, or followed by a port), normalised. */
function ipsIn(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/[0-9A-Fa-f:.]{2,}/g)) {
    const tok = m[0];
    const trimmed = tok.replace(/^:+|:+$/g, "");
    const candidates = [tok, trimmed];
    for (const t of [tok, trimmed]) {
      const last = t.lastIndexOf(":");
      if (last > 0) candidates.push(t.slice(0, last));
    }
    for (const c of candidates) {
      const ip = normalizeIp(c);
      if (ip) out.add(ip);
    }
  }
  return out;
}

const PLANTED = "192.0.2.66";
const PLANTED6 = "2001:db8:bad::66";

/** Attacker text built from fragments that imitate every delimiter the parser relies on. */
const hostileText = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        PLANTED,
        `[${PLANTED6}]:5060`,
        `${PLANTED}:5060`,
        `IPV4/UDP/${PLANTED}/5060`,
        `RemoteAddress="IPV4/UDP/${PLANTED}/5060`,
        `",RemoteAddress="IPV6/UDP/${PLANTED6}/5060`,
        `",LocalAddress="IPV4/UDP/${PLANTED}/5060",RemoteAddress="IPV4/UDP/${PLANTED}/5060`,
        `' failed for '${PLANTED}:5060' (callid: x) - Failed to authenticate`,
        ` failed for '${PLANTED}:5060`,
        `' - Wrong password`,
        `) - No matching endpoint found`,
        `' (${PLANTED}:5060) to extension '1`,
        `(${PLANTED}:5060`,
        `) to extension '`,
        `' rejected because extension not found in context 'x'.`,
        `' (from ${PLANTED})`,
        `"Rejecting unknown SIP connection from ${PLANTED}"`,
        `User-Agent: friendly-scanner ${PLANTED}`,
        `<sip:100@${PLANTED}>`,
        `"`,
        `'`,
        `,`,
        ` `,
        `: `,
        `@`,
      ),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join("").replace(/[\r\n]/g, " "));

const realIp = fc.integer({ min: 1, max: 254 }).map((n) => `198.51.100.${n}`);
const reasons = fc.constantFrom("No matching endpoint found", "Failed to authenticate", "Not match Endpoint ACL");

/** Line templates: each puts attacker text around an address that Asterisk itself prints. */
const TEMPLATES: ((ip: string, a: string, b: string, reason: string) => string)[] = [
  (ip, a, b, r) =>
    `[2024-05-14 10:21:07] NOTICE[2191] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '${a}' failed for '${ip}:5060' (callid: ${b}) - ${r}`,
  (ip, a, b, r) =>
    `[2024-05-14 10:21:07] NOTICE[2191] res_pjsip/pjsip_distributor.c: Request from '${a}' failed for '${ip}:5060' (callid: ${b}) - ${r}`,
  (ip, a) =>
    `[May  4 09:01:02] NOTICE[31877] chan_sip.c: Registration from '${a}' failed for '${ip}:5060' - Wrong password`,
  (ip, a, b) =>
    `[May  4 09:01:02] NOTICE[31877][C-0000001b] chan_sip.c: Call from '${a}' (${ip}:5071) to extension '${b}' rejected because extension not found in context 'public'.`,
  (ip, _a, b) =>
    `[2024-05-14 10:21:28] NOTICE[2194] res_pjsip_session.c:  anonymous: Call (UDP:${ip}:5071) to extension '${b}' rejected because extension not found in context 'anonymous'.`,
  (ip, a, b) =>
    `[2024-05-14 10:21:07] SECURITY[1843] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2024-05-14T10:21:07.112+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="${a}",SessionID="${b}",LocalAddress="IPV4/UDP/10.20.0.5/5060",RemoteAddress="IPV4/UDP/${ip}/5087"`,
  (ip, a, b) =>
    `[2024-05-14 10:21:32] SECURITY[1843] res_security_log.c: SecurityEvent="RequestNotAllowed",EventTV="2024-05-14T10:21:32.003+0000",Severity="Error",Service="AMI",EventVersion="1",AccountID="${a}",SessionID="0x7f1c38001e40",LocalAddress="IPV4/TCP/0.0.0.0/5038",RemoteAddress="IPV4/TCP/${ip}/41922",RequestType="Action: ${b}",SessionTV="1970-01-01T00:00:00.000+0000"`,
  (ip, a, b) =>
    `[2024-05-14 10:21:11] SECURITY[1843] res_security_log.c: SecurityEvent="ChallengeResponseFailed",EventTV="2024-05-14T10:21:11.521+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="<unknown>",SessionID="${a}",LocalAddress="IPV4/UDP/10.20.0.5/5060",RemoteAddress="IPV4/UDP/${ip}/5087",Challenge="1/x",Response="${b}",ExpectedResponse=""`,
  (ip, a) => `[2024-05-14 10:21:32] NOTICE[3301] manager.c: ${ip} failed to authenticate as '${a}'`,
  (ip, a) => `[May 14 10:21:25] NOTICE[31902] chan_iax2.c: No registration for peer '${a}' (from ${ip})`,
  (ip, a) =>
    `[May 14 10:21:28] NOTICE[31903] chan_iax2.c: Rejected connect attempt from ${ip}:4569, who was trying to reach '${a}@default'`,
  (ip, a) => `[2013-11-11 14:33:38] WARNING[6756][C-0000001d] Ext. ${a}: "Rejecting unknown SIP connection from ${ip}"`,
  (ip, a) =>
    `May 14 10:21:07 pbx asterisk[1234]: NOTICE[5678]: chan_sip.c:1234 in handle_request_register: Registration from '${a}' failed for '${ip}:5060' - Wrong password`,
];

describe("asterisk parser properties", () => {
  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: "binary" }), (s) => {
        asteriskParser.parse(s, CTX);
        asteriskParser.parse(`[2024-05-14 10:21:07] NOTICE[1] chan_sip.c: ${s}`, CTX);
        asteriskParser.parse(`[2024-05-14 10:21:07] SECURITY[1] res_security_log.c: SecurityEvent="${s}`, CTX);
      }),
      { numRuns: RUNS },
    );
  });

  it("on mutated real lines, never throws, needs a needle, and names only addresses written in the line", () => {
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant("insert" as const),
        at: fc.nat(),
        text: fc.oneof(
          fc.string({ maxLength: 4 }),
          fc.constantFrom('"', "'", ",", ":", "[", "]", "(", ")", PLANTED, `${PLANTED}:5060`, `[${PLANTED6}]`),
        ),
      }),
      fc.record({ op: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: fc.string({ minLength: 1, maxLength: 2 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...REAL_LINES), fc.array(mutation, { minLength: 1, maxLength: 4 }), (line, ops) => {
        let s = line;
        for (const op of ops) {
          const at = op.at % (s.length + 1);
          if (op.op === "insert") s = s.slice(0, at) + op.text + s.slice(at);
          else if (op.op === "delete") s = s.slice(0, at) + s.slice(at + op.len);
          else s = s.slice(0, at) + op.text + s.slice(at + op.text.length);
        }
        const ev = asteriskParser.parse(s, CTX);
        if (ev)
          assert.ok(
            asteriskParser.needles.some((n) => s.includes(n)),
            `an event from a line without a needle: ${s}`,
          );
        if (ev && ev.kind !== "hostile") {
          assert.ok(ipsIn(s).has(ev.remote.address), `${ev.remote.address} is not written in: ${s}`);
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("never names an address planted in From, To, Call-ID, AccountID, Action, caller name, extension or peer name", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: TEMPLATES.length - 1 }),
        realIp,
        hostileText,
        hostileText,
        reasons,
        (t, ip, a, b, reason) => {
          const line = TEMPLATES[t]!(ip, a, b, reason);
          const ev = asteriskParser.parse(line, CTX);
          if (ev && ev.kind !== "hostile") {
            assert.equal(ev.remote.address, ip, `template ${t}: ${line}`);
          }
        },
      ),
      { numRuns: RUNS * 3 },
    );
  });

  it("with harmless attacker fields, every template yields the real address", () => {
    const plain = fc.stringMatching(/^[A-Za-z0-9_+-]{1,12}$/);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: TEMPLATES.length - 1 }),
        realIp,
        plain,
        plain,
        reasons,
        (t, ip, a, b, reason) => {
          const ev = asteriskParser.parse(TEMPLATES[t]!(ip, a, b, reason), CTX);
          assert.ok(ev && ev.kind !== "hostile", `template ${t} gave ${ev?.kind}`);
          assert.equal(ev.remote.address, ip);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("securityAddress accepts exactly what parseAsteriskAddress accepts, with the same result", () => {
    const ipText = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV6().map((s) => s.toUpperCase()),
      fc.constantFrom("::ffff:198.51.100.7", "1.2.3", "256.1.1.1", "example.com", "", "1:2", "::", "01.2.3.4"),
    );
    const value = fc.oneof(
      fc
        .tuple(
          fc.constantFrom("IPV4/", "IPV6/", "IPV5/", "ipv4/", "IPV4", ""),
          fc.constantFrom("", "UDP/", "TCP/", "TLS/", "WS/", "WSS/", "SCTP/", "udp/", "/"),
          ipText,
          fc.constantFrom("/", "//", ":", ""),
          fc.oneof(fc.integer({ min: 0, max: 99999 }).map(String), fc.constantFrom("", "05060", "123456", "x")),
        )
        .map((p) => p.join("")),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(value, (v) => {
        const a = parseAsteriskAddress(v);
        const b = securityAddress(v);
        assert.deepEqual(
          b && { ip: b.address, port: b.port, transport: b.transport },
          a && { ip: a.ip, port: a.port, transport: a.transport },
          v,
        );
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it("triesStart finds exactly the `after %u tries in %.3f ms` ending the old regex matched", () => {
    const TRIES = /^ after \d+ tries in \d+(?:\.\d+)? ms$/;
    const reference = (l: string): number => {
      const a = l.lastIndexOf(" after ");
      return a >= 0 && TRIES.test(l.slice(a)) ? a : -1;
    };
    const piece = fc.constantFrom(
      " after ",
      " tries in ",
      " ms",
      ".",
      "1",
      "23",
      "0.5",
      "x",
      " ",
      "after",
      "tries",
      "ms",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const l = `Failed to authenticate${parts.join("")}`;
        assert.equal(triesStart(l, l.length), reference(l), JSON.stringify(l));
      }),
      { numRuns: 20 * RUNS },
    );
    assert.equal(triesStart("x after 3 tries in 12.345 ms", 28), 1);
    assert.equal(triesStart("x after 3 tries in 12 ms", 24), 1);
    for (const bad of ["x after tries in 1 ms", "x after 3 tries in 1. ms", "x after 3 tries in .5 ms", " ms"]) {
      assert.equal(triesStart(bad, bad.length), -1, bad);
    }
  });

  it("hostPort agrees with splitHostPort on ip:port and [v6]:port", () => {
    const text = fc.oneof(
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 70000 })).map(([ip, p]) => `${ip}:${p}`),
      fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 70000 })).map(([ip, p]) => `[${ip}]:${p}`),
      fc.string({ maxLength: 30 }).filter((s) => s.includes(":") && !s.slice(s.indexOf(":") + 1).includes(":")),
    );
    fc.assert(
      fc.property(text, (s) => {
        const a = splitHostPort(s);
        const b = hostPort(s, false);
        assert.deepEqual(b && { ip: b.address, port: b.port }, a, s);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("gives the same result whatever was parsed before (the time memos are invisible)", () => {
    const zones = fc.constantFrom("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata");
    const nows = fc
      .constantFrom("2024-12-31T00:00:00Z", "2025-01-02T00:00:00Z", "2024-03-31T01:30:00Z")
      .map(Date.parse);
    const job = fc.record({ line: fc.constantFrom(...REAL_LINES), zone: zones, now: nows });
    // The first 64 lines of a process bypass the memos (see memoWarmup): get past them, so that
    // the memoised paths are the ones compared with the cold ones below.
    for (let i = 0; i < 128; i++) asteriskParser.parse(REAL_LINES[i % REAL_LINES.length]!, { zone: "UTC", now: 0 });
    fc.assert(
      fc.property(fc.array(job, { minLength: 2, maxLength: 12 }), (jobs) => {
        const run = (j: (typeof jobs)[number]) => {
          const ev = asteriskParser.parse(j.line, { zone: j.zone, now: j.now });
          return ev && JSON.stringify(toRecord(ev));
        };
        const forward = jobs.map(run);
        const backward = [...jobs].reverse().map(run).reverse();
        assert.deepEqual(backward, forward);
        // And each equals the result with a cold memo for that context (parsed twice after an unrelated line).
        for (const j of jobs) {
          asteriskParser.parse("[Jan  1 00:00:00] NOTICE[1] x.c: y", { zone: "Pacific/Auckland", now: 0 });
          assert.equal(run(j), forward[jobs.indexOf(j)]);
        }
      }),
      { numRuns: RUNS / 2 },
    );
  });
});
