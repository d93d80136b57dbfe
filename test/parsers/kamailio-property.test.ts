/**
 * Property tests: whatever the attacker writes into the Call-ID, From, auth user or User-Agent,
 * the Kamailio parser never throws and never returns an address other than the one at the
 * trusted position; with marker-free attacker text it still finds the real address.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { normalizeIp } from "../../src/core/address.js";
import { isAttack, type SecurityEvent } from "../../src/core/events.js";
import { kamailioParser } from "../../src/parsers/kamailio.js";
import { SHARED } from "../helpers/paths.js";

const CTX = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };
const PLANTED = "192.0.2.50";
const MARKERS = [
  "PIKE - BLOCKing ip ",
  "(IP:",
  "Malformed SIP request from ",
  "[SIP-FIREWALL][FAIL2BAN] ",
  "IPS: ",
  "src_ip=",
];
const FRAGMENTS = [
  `src_ip=${PLANTED} src_port=5060 proto=udp`,
  ` src_ip=${PLANTED}`,
  `[SIP-FIREWALL][FAIL2BAN] ${PLANTED}`,
  `(IP:${PLANTED}:5060)`,
  `PIKE - BLOCKing ip ${PLANTED}, node=0x1`,
  `Malformed SIP request from ${PLANTED}:5060`,
  "IPS: auth-failed rc=-2 ",
  "IPS: scanner ",
  "<script>: ",
  "} ",
  "{",
  "]",
  "ua=[",
  " method=",
  " user=",
  " authuser=",
  `sip:100@${PLANTED}`,
  PLANTED,
  "<null>",
];

/** Attacker text: anything a SIP header value can hold (no CR/LF), rich in planted markers. */
const attackerText = fc
  .array(fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.constantFrom(...FRAGMENTS)), { maxLength: 6 })
  .map((parts) => parts.join("").replace(/[\r\n]/g, ""));

/** Trusted addresses never equal the planted one. */
const trustedIp = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((n) => `198.51.100.${n}`),
  fc.ipV4().filter((ip) => ip !== PLANTED),
  fc.ipV6().filter((ip) => normalizeIp(ip) !== PLANTED),
);
const port = fc.integer({ min: 1, max: 65535 });
const method = fc.constantFrom("REGISTER", "INVITE", "OPTIONS", "SUBSCRIBE");

const PREFIXES = [
  "2024-05-14T10:21:08.020117+00:00 sip1 /usr/sbin/kamailio[2146]: ",
  "May 14 10:21:08 sip1 /usr/sbin/kamailio[2146]: ",
  "<132>May 14 10:21:08 /usr/sbin/kamailio[2146]: ",
  " 1(27432) ",
  "2024-05-14T10:21:08+0000 sip1 kamailio[27431]: 12(27443) ",
];

interface Case {
  line: string;
  ip: string;
  attacker: string[];
}

const lines: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ p: fc.constantFrom(...PREFIXES), cid: attackerText, ip: trustedIp }).map(({ p, cid, ip }) => ({
    line: `${p}WARNING: {1 1 OPTIONS ${cid}} pike [pike_funcs.c:135]: pike_check_ipaddr(): PIKE - BLOCKing ip ${ip}, node=0x7f71e88dd308`,
    ip,
    attacker: [cid],
  })),
  fc
    .record({ p: fc.constantFrom(...PREFIXES), cid: attackerText, fu: attackerText, m: method, ip: trustedIp, port })
    .map(({ p, cid, fu, m, ip, port }) => ({
      line: `${p}ALERT: {1 1 ${m} ${cid}} <script>: ALERT: pike blocking ${m} from ${fu} (IP:${ip}:${port})`,
      ip,
      attacker: [cid, fu],
    })),
  fc
    .record({ p: fc.constantFrom(...PREFIXES), cid: attackerText, ip: trustedIp, port })
    .map(({ p, cid, ip, port }) => ({
      line: `${p}ERROR: {1 1 INVITE ${cid}} <script>: Malformed SIP request from ${ip}:${port}`,
      ip,
      attacker: [cid],
    })),
  fc.record({ p: fc.constantFrom(...PREFIXES), cid: attackerText, ip: trustedIp }).map(({ p, cid, ip }) => ({
    line: `${p}ALERT: {1 1 INVITE ${cid}} <script>: [SIP-FIREWALL][FAIL2BAN] ${ip}`,
    ip,
    attacker: [cid],
  })),
  fc
    .record({
      p: fc.constantFrom(...PREFIXES),
      cid: attackerText,
      rc: fc.constantFrom(-1, -2, -3, -6, -7, -8),
      user: attackerText,
      au: attackerText,
      ua: attackerText,
      ip: trustedIp,
      port,
      proto: fc.constantFrom("udp", "tcp", "tls", "ws", "wss", "sctp"),
    })
    .map(({ p, cid, rc, user, au, ua, ip, port, proto }) => ({
      line: `${p}NOTICE: {1 2 REGISTER ${cid}} <script>: IPS: auth-failed rc=${rc} method=REGISTER user=${user} authuser=${au} ua=[${ua}] src_ip=${ip} src_port=${port} proto=${proto}`,
      ip,
      attacker: [cid, user, au, ua],
    })),
  fc
    .record({ p: fc.constantFrom(...PREFIXES), cid: attackerText, ua: attackerText, ip: trustedIp, port })
    .map(({ p, cid, ua, ip, port }) => ({
      line: `${p}WARNING: {1 1 OPTIONS ${cid}} <script>: IPS: scanner ua=[${ua}] method=OPTIONS src_ip=${ip} src_port=${port} proto=udp`,
      ip,
      attacker: [cid, ua],
    })),
);

function parse(line: string): SecurityEvent | null {
  let ev: SecurityEvent | null = null;
  assert.doesNotThrow(() => {
    ev = kamailioParser.parse(line, CTX);
  }, line);
  return ev;
}

/**
 * An independent reading of the trusted position: the address at the end of the line, in
 * whichever tail the line ends with. Null when the line ends in none of them.
 */
function trustedAt(line: string): string | null {
  const tails: [RegExp, boolean][] = [
    [/PIKE - BLOCKing ip (\S+), node=0x[0-9a-fA-F]+$/, false],
    [/\(IP:(\S+)\)$/, true],
    [/Malformed SIP request from (\S+)$/, true],
    [/\[SIP-FIREWALL\]\[FAIL2BAN\] (\S+)$/, false],
    [/ src_ip=(\S+) src_port=\d+(?: proto=[a-z]+)?$/, false],
  ];
  for (const [re, withPort] of tails) {
    const m = re.exec(line);
    if (!m) continue;
    const raw = withPort ? m[1]!.slice(0, m[1]!.lastIndexOf(":")) : m[1]!;
    return normalizeIp(raw);
  }
  return null;
}

describe("kamailio parser properties", () => {
  it("returns only the trusted address, whatever the attacker fields hold", () => {
    fc.assert(
      fc.property(lines, ({ line, ip }) => {
        const ev = parse(line);
        if (ev === null || ev.kind === "hostile") return;
        assert.equal(ev.remote.address, normalizeIp(ip), line);
        assert.notEqual(ev.remote.address, PLANTED, line);
      }),
      { numRuns: 1500 },
    );
  });

  it("finds the real address when the attacker fields hold no marker", () => {
    const clean = lines.filter(({ attacker }) => attacker.every((a) => MARKERS.every((m) => !a.includes(m))));
    fc.assert(
      fc.property(clean, ({ line, ip }) => {
        const ev = parse(line);
        assert.ok(ev, `no event: ${line}`);
        assert.notEqual(ev.kind, "hostile", line);
        assert.equal(ev.remote?.address, normalizeIp(ip), line);
      }),
      { numRuns: 800 },
    );
  });

  it("never throws on random text, and any event there sits at the trusted position", () => {
    const noise = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc
        .array(fc.oneof(fc.constantFrom(...FRAGMENTS, ...PREFIXES, "NOTICE: ", "ALERT: "), fc.string()), {
          maxLength: 10,
        })
        .map((a) => a.join("")),
    );
    fc.assert(
      fc.property(noise, (line) => {
        const ev = parse(line);
        if (ev && ev.kind !== "hostile") assert.equal(ev.remote.address, trustedAt(line), line);
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on mutated real lines, and never returns an address from elsewhere in them", () => {
    const real = ["kamailio-syslog.log", "kamailio-5.6.3-lab-capture.txt"]
      .flatMap((f) => readFileSync(join(SHARED, "reference", "samples", f), "utf8").split("\n"))
      .filter((l) => l !== "" && !l.startsWith("#"));
    assert.ok(real.length > 40, "reference samples are missing");
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant("insert" as const),
        at: fc.nat(),
        text: fc.oneof(fc.string(), fc.constantFrom(...FRAGMENTS)),
      }),
      fc.record({
        op: fc.constant("delete" as const),
        at: fc.nat(),
        text: fc.string({ maxLength: 0 }),
        len: fc.nat(8),
      }),
      fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: fc.string({ minLength: 1, maxLength: 3 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...real), fc.array(mutation, { minLength: 1, maxLength: 4 }), (base, muts) => {
        let line = base;
        for (const m of muts) {
          const at = line.length === 0 ? 0 : m.at % (line.length + 1);
          if (m.op === "insert") line = line.slice(0, at) + m.text + line.slice(at);
          else if (m.op === "delete") line = line.slice(0, at) + line.slice(at + ("len" in m ? m.len : 1));
          else line = line.slice(0, at) + m.text + line.slice(at + m.text.length);
        }
        const ev = parse(line);
        if (ev === null || !isAttack(ev)) return;
        assert.equal(ev.remote.address, trustedAt(line), line);
      }),
      { numRuns: 3000 },
    );
  });
});
