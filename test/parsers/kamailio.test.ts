import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { KAMAILIO_PATTERNS, kamailioParser } from "../../src/parsers/kamailio.js";
import { ROOT } from "../helpers/paths.js";

const CTX = { zone: "UTC", now: Date.parse("2024-12-31T00:00:00Z") };
const PREFIX = "2024-05-14T10:21:08.020117+00:00 sip1 /usr/sbin/kamailio[2146]: ";

function parse(line: string): SecurityEvent | null {
  return kamailioParser.parse(line, CTX);
}

/** What xlog prints for each pseudo-variable the docs use, for a REGISTER from 198.51.100.23. */
const PV: Record<string, string> = {
  "$var(rc)": "-2",
  $rm: "REGISTER",
  $fU: "1001",
  $fu: "sip:1001@10.20.0.5",
  $au: "1001",
  $ua: "Z 5.6.4 v2.10.20.2",
  $si: "198.51.100.23",
  $sp: "5060",
  $pr: "udp",
};

/** Every `xlog("L_…", "…\n")` call in docs/kamailio.md, with its level and format string. */
function documentedXlogs(): { level: string; format: string }[] {
  const doc = readFileSync(join(ROOT, "docs", "kamailio.md"), "utf8");
  return [...doc.matchAll(/xlog\("L_([A-Z]+)", "(.*?)\\n"\);/g)].map((m) => ({ level: m[1]!, format: m[2]! }));
}

function render(format: string): string {
  return format.replace(/\$var\(rc\)|\$[a-zA-Z]+/g, (pv) => {
    const v = PV[pv];
    assert.ok(v !== undefined, `docs use ${pv}, which this test does not know`);
    return v;
  });
}

const LEVEL_NAMES: Record<string, string> = {
  ALERT: "ALERT",
  WARN: "WARNING",
  NOTICE: "NOTICE",
  ERR: "ERROR",
  INFO: "INFO",
};

describe("kamailio parser", () => {
  it("lists unique pattern ids and needles", () => {
    assert.equal(new Set(kamailioParser.patterns).size, kamailioParser.patterns.length);
    assert.ok(kamailioParser.patterns.every((p) => p.startsWith("kamailio.")));
    assert.deepEqual([...kamailioParser.patterns].sort(), Object.values(KAMAILIO_PATTERNS).sort());
    assert.ok(kamailioParser.needles.length > 0 && kamailioParser.needles.every((n) => n.length >= 7));
  });

  it("parses every xlog line that docs/kamailio.md tells operators to add", () => {
    const xlogs = documentedXlogs();
    const want: Record<string, string> = {
      "ALERT: pike blocking": KAMAILIO_PATTERNS.pikeAlert,
      "[SIP-FIREWALL][FAIL2BAN]": KAMAILIO_PATTERNS.sipFirewall,
      "IPS: scanner": KAMAILIO_PATTERNS.scanner,
      "IPS: auth-failed": KAMAILIO_PATTERNS.authFailed,
    };
    for (const start of Object.keys(want)) {
      assert.ok(
        xlogs.some((x) => x.format.startsWith(start)),
        `docs/kamailio.md has no xlog line starting ${start}`,
      );
    }
    for (const { level, format } of xlogs) {
      const name = LEVEL_NAMES[level];
      assert.ok(name, `unknown level L_${level}`);
      const line = `${PREFIX}${name}: {1 2 REGISTER 5b1e2c} <script>: ${render(format)}`;
      const ev = parse(line);
      const pattern = Object.entries(want).find(([start]) => format.startsWith(start))?.[1];
      assert.ok(ev, `no event for the documented line ${line}`);
      assert.equal(ev.pattern, pattern, line);
      assert.equal(ev.remote?.address, "198.51.100.23", line);
    }
  });

  it("describes the auth result in detail and keeps the auth user when it differs", () => {
    const ev = parse(
      `${PREFIX}NOTICE: {1 2 INVITE x} <script>: IPS: auth-failed rc=-8 method=INVITE user=1001 authuser=1009 ua=[UA] src_ip=198.51.100.23 src_port=5060 proto=udp`,
    );
    assert.equal(ev?.kind, "auth_failed");
    assert.equal(ev?.service, "auth");
    assert.equal(ev?.account, "1001");
    assert.equal(ev?.detail, "rc=-8 USER_MISMATCH method=INVITE authuser=1009");
  });

  it("falls back to the auth user when the From user is empty or <null>", () => {
    for (const user of ["", "<null>"]) {
      const ev = parse(
        `${PREFIX}NOTICE: <script>: IPS: auth-failed rc=-2 method=REGISTER user=${user} authuser=alice ua=[UA] src_ip=198.51.100.23 src_port=5060 proto=udp`,
      );
      assert.equal(ev?.account, "alice", user);
    }
  });

  it("puts pike's node into the detail and takes no port from the pike line", () => {
    const ev = parse(
      `${PREFIX}WARNING: pike [pike_funcs.c:135]: pike_check_ipaddr(): PIKE - BLOCKing ip 198.51.100.7, node=0x7f71e88dd308`,
    );
    assert.equal(ev?.detail, "node=0x7f71e88dd308");
    assert.equal(ev?.remote?.port, undefined);
    assert.equal(ev?.service, "pike");
  });

  it("reads the method of the stock ALERT line from its fixed position, not from the From URI", () => {
    const ev = parse(
      `${PREFIX}ALERT: {1 1 INVITE c} <script>: ALERT: pike blocking INVITE from sip:x@h;pike blocking BYE from (IP:198.51.100.7:5070)`,
    );
    assert.equal(ev?.detail, "method=INVITE");
    assert.equal(ev?.remote?.port, 5070);
  });

  it("uses ctx.now only for a stderr line that carries no time at all", () => {
    const line =
      " 1(27432) WARNING: pike [pike_funcs.c:135]: pike_check_ipaddr(): PIKE - BLOCKing ip 198.51.100.7, node=0x1";
    assert.equal(parse(line)?.time, CTX.now);
    assert.equal(parse(`2024-05-14T10:21:08Z ${line}`)?.time, Date.parse("2024-05-14T10:21:08Z"));
    assert.equal(parse(`May 14 10:21:08 h kamailio[1]: ${line}`)?.time, Date.parse("2024-05-14T10:21:08Z"));
  });

  it("accepts the stderr process number only in its printf form", () => {
    const body = "WARNING: pike [pike_funcs.c:135]: pike_check_ipaddr(): PIKE - BLOCKing ip 198.51.100.7, node=0x1";
    assert.ok(parse(` 1(27432) ${body}`));
    assert.ok(parse(`12(27432) ${body}`));
    // journalctl indents continuation lines of a multi-line message: such a line is not a record
    assert.equal(parse(`                                  1(27432) ${body}`), null);
    assert.equal(parse(`1(27432) ${body}`), null);
  });

  it("keeps the line and yields hostile events with every candidate", () => {
    const line = `${PREFIX}ALERT: {1 1 INVITE [SIP-FIREWALL][FAIL2BAN] 2001:db8::50} <script>: [SIP-FIREWALL][FAIL2BAN] 198.51.100.7`;
    const ev = parse(line);
    assert.equal(ev?.kind, "hostile");
    assert.equal(ev?.line, line);
    assert.equal(ev?.remote, undefined);
    assert.deepEqual(ev?.kind === "hostile" ? ev.candidates : null, ["2001:db8::50", "198.51.100.7"]);
  });

  it("never throws and stays cheap on long hostile lines", () => {
    const long = `${PREFIX}NOTICE: {${"} <script>: IPS: ".repeat(5000)}} <script>: IPS: auth-failed rc=-2 user=${"src_ip=1.2.3.4 ".repeat(5000)} src_ip=198.51.100.7 src_port=5060 proto=udp`;
    assert.equal(parse(long)?.kind, "hostile");
    const deep = `${PREFIX}ALERT: {${"{".repeat(20000)}} <script>: ALERT: pike blocking X from ${"(IP:".repeat(20000)} (IP:198.51.100.7:5060)`;
    assert.equal(parse(deep)?.kind, "hostile");
    for (const line of ["", "\u0000", "src_ip=", "PIKE - BLOCKing ip ", "<1>", `${PREFIX}: src_ip=`]) {
      assert.doesNotThrow(() => parse(line));
    }
  });
});
