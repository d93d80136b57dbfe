/**
 * `sipwarden test`, run as a real process on a log written here: the `--json` report (counts
 * per kind, pattern and address, distinct accounts, hostile lines, bans), `--events` NDJSON,
 * standard input, and the error paths (unreadable file, bad options).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT } from "../helpers/paths.js";

const MAIN = join(ROOT, "src", "main.ts");

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, "test", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    ...(input !== undefined ? { input } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pjsip = (sec: number, account: string, ip: string, reason = "Failed to authenticate") =>
  `[2024-05-14 10:21:${String(sec).padStart(2, "0")}] NOTICE[2191] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '"${account}" <sip:${account}@10.20.0.5>' failed for '${ip}:5060' (callid: c${sec}) - ${reason}`;
const verbose = (sec: number) =>
  `[2024-05-14 10:21:${String(sec).padStart(2, "0")}] VERBOSE[4033][C-2cc09a89] pbx.c: Executing [100@from-internal:1] Dial("PJSIP/1001-0000001", "PJSIP/1002,30") in new stack`;
const hostileLine =
  '[2024-05-14 10:21:40] SECURITY[1843] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2024-05-14T10:21:40.000+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="100",SessionID="x",LocalAddress="IPV4/UDP/10.20.0.5/5060",RemoteAddress="IPV4/UDP/192.0.2.10/5060",LocalAddress="IPV4/UDP/10.20.0.5/5060",RemoteAddress="IPV4/UDP/198.51.100.130/5060"';

// 198.51.100.23: 6 failed logins for one account (brute force: 5 in 10 min bans).
// 198.51.100.40: 3 unknown accounts, one of them non-ASCII (UTF-8 decoding), one line ending in CRLF.
const LINES = [
  verbose(0),
  ...[1, 2, 3, 4, 5, 6].map((s) => pjsip(s, "1001", "198.51.100.23")),
  verbose(7),
  pjsip(8, "200", "198.51.100.40", "No matching endpoint found"),
  `${pjsip(9, "201", "198.51.100.40", "No matching endpoint found")}\r`,
  pjsip(10, "jörg", "198.51.100.40", "No matching endpoint found"),
  hostileLine,
  "not a log line at all",
];

interface Report {
  lines: number;
  events: number;
  hostile: number;
  byKind: Record<string, number>;
  byPattern: Record<string, number>;
  addresses: { ip: string; events: number; kinds: Record<string, number>; accounts: string[]; accountCount: number }[];
  hostileLines: { line: number; pattern: string; candidates: string[] }[];
  bans: { ip: string; rule: string; count: number; first: string; last: string; duration: number }[];
  linesPerSecond: number;
}

describe("sipwarden test", () => {
  let dir = "";
  let log = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sw-test-cmd-"));
    log = join(dir, "full");
    writeFileSync(log, LINES.join("\n") + "\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("--json: counts by kind, pattern and address, distinct accounts, hostile lines and bans", () => {
    const r = run(["--json", log]);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as Report;
    assert.equal(rep.lines, LINES.length);
    assert.equal(rep.events, 10);
    assert.equal(rep.hostile, 1);
    assert.deepEqual(rep.byKind, { auth_failed: 6, unknown_account: 3, hostile: 1 });
    assert.deepEqual(rep.byPattern, {
      "asterisk.pjsip.request_failed": 9,
      "asterisk.security.InvalidAccountID": 1,
    });
    assert.deepEqual(rep.addresses, [
      { ip: "198.51.100.23", events: 6, kinds: { auth_failed: 6 }, accounts: ["1001"], accountCount: 1 },
      {
        ip: "198.51.100.40",
        events: 3,
        kinds: { unknown_account: 3 },
        accounts: ["200", "201", "jörg"],
        accountCount: 3,
      },
    ]);
    assert.equal(rep.hostileLines.length, 1);
    assert.equal(rep.hostileLines[0]!.line, 12);
    assert.deepEqual(rep.hostileLines[0]!.candidates, ["IPV4/UDP/192.0.2.10/5060", "IPV4/UDP/198.51.100.130/5060"]);
    const bf = rep.bans.filter((b) => b.ip === "198.51.100.23");
    assert.equal(bf.length, 1, JSON.stringify(rep.bans));
    assert.equal(bf[0]!.duration, 3600);
    assert.equal(bf[0]!.first, "2024-05-14T10:21:01.000Z");
    // Neither hostile address is banned.
    assert.ok(!rep.bans.some((b) => b.ip === "192.0.2.10" || b.ip === "198.51.100.130"));
    assert.ok(rep.linesPerSecond > 0);
  });

  test("--no-rules parses only; the same counts, no bans", () => {
    const r = run(["--json", "--no-rules", log]);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as Report;
    assert.equal(rep.events, 10);
    assert.deepEqual(rep.bans, []);
  });

  test("--events prints one JSON event per line; standard input with `-`", () => {
    const r = run(["--events", "-"], LINES.join("\n"));
    assert.equal(r.code, 0, r.stderr);
    const evs = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(evs.length, 10);
    const jorg = evs.find((e) => e.account === "jörg");
    assert.ok(jorg, r.stdout);
    assert.equal(jorg.ip, "198.51.100.40");
    assert.equal(jorg.kind, "unknown_account");
    assert.equal(jorg.time, "2024-05-14T10:21:10.000Z");
    // The CRLF line: its carriage return is not part of the event's line.
    const crlf = evs.find((e) => e.account === "201");
    assert.ok(crlf && typeof crlf.line === "string" && !crlf.line.endsWith("\r"));
  });

  test("human output: the sections an admin reads", () => {
    const r = run([log]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Read 13 lines/);
    assert.match(r.stdout, /Events by kind:\n {2}auth_failed +6/);
    assert.match(r.stdout, /198\.51\.100\.40 +3 +unknown_account 3 +accounts: 200, 201, jörg/);
    assert.match(r.stdout, /Hostile lines/);
    assert.match(r.stdout, /Would ban 1 address:\n {2}198\.51\.100\.23 +sip-auth-bruteforce/);
  });

  test("an unreadable file is reported and the others are still read; exit 66", () => {
    const r = run(["--json", join(dir, "missing.log"), log]);
    assert.equal(r.code, 66);
    assert.match(r.stderr, /missing\.log.*no such file/);
    assert.equal((JSON.parse(r.stdout) as Report).events, 10);
  });

  test("bad options: a clear message and exit 64", () => {
    const both = run(["--json", "--events", log]);
    assert.equal(both.code, 64);
    assert.match(both.stderr, /--json and --events cannot be combined/);
    const fmt = run(["--format", "sylog", log]);
    assert.notEqual(fmt.code, 0);
    assert.match(fmt.stderr, /sylog/);
  });
});
