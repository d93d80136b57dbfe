/**
 * `sipwarden test`, run as a real process on a log written here: the `--json` report (counts
 * per kind, pattern and address, distinct accounts, hostile lines, bans), `--events` NDJSON,
 * standard input, and the error paths (unreadable file, bad options).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { ROOT } from "../helpers/paths.js";

const MAIN = join(ROOT, "src", "main.ts");

function run(args: string[], input?: string | Buffer) {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, "test", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    ...(input !== undefined ? { input } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const JOURNAL_REMOTE = ["/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"].find(
  existsSync,
);
const HAVE_JOURNALCTL = spawnSync("journalctl", ["--version"]).status === 0;

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

  test("a gzip-compressed rotated log (full.1.gz), also on standard input: the same report as the plain log", () => {
    const gz = join(dir, "full.1.gz");
    writeFileSync(gz, gzipSync(LINES.join("\n") + "\n"));
    const plain = JSON.parse(run(["--json", log]).stdout) as Report;
    for (const r of [run(["--json", gz]), run(["--json", "-"], gzipSync(LINES.join("\n") + "\n"))]) {
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout) as Report;
      assert.equal(rep.lines, LINES.length);
      assert.equal(rep.events, 10);
      assert.deepEqual(rep.addresses, plain.addresses);
      assert.deepEqual(rep.bans, plain.bans);
    }
  });

  test("a gzip log cut short: its lines up to the cut are counted and reported, the error named; exit 66", () => {
    // Enough lines that half of the compressed file holds some of them.
    const many = Array.from({ length: 4000 }, (_, i) => pjsip(i % 60, `u${i}`, "198.51.100.77"));
    const whole = gzipSync(many.join("\n") + "\n");
    const cut = join(dir, "full.2.gz");
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const r = run(["--json", "--no-rules", cut, log]);
    assert.equal(r.code, 66);
    assert.match(
      r.stderr,
      /full\.2\.gz: gzip data is damaged or cut short: unexpected end of file \(after \d+ lines\)/,
    );
    const rep = JSON.parse(r.stdout) as Report;
    const read = Number(/after (\d+) lines/.exec(r.stderr)![1]);
    assert.ok(read > 100 && read < many.length, String(read));
    // The cut file's lines (each one event) and the plain log's are all in the report.
    assert.equal(rep.lines, read + LINES.length);
    assert.equal(rep.events, read + 10);
    assert.equal(rep.addresses.find((a) => a.ip === "198.51.100.77")?.events, read);
  });

  test("an xz-compressed log is refused with the command that reads it; the other files are still read", (t) => {
    const xz = spawnSync("xz", ["-c"], { input: LINES.join("\n") });
    if (xz.status !== 0) return t.skip("xz is not installed (scripts/install-test-deps.sh installs it)");
    const f = join(dir, "full.3.xz");
    writeFileSync(f, xz.stdout);
    const r = run(["--json", f, log]);
    assert.equal(r.code, 66);
    assert.equal(
      r.stderr,
      `sipwarden: ${f}: compressed with xz; read it through a pipe: xzcat ${f} | sipwarden test -\n`,
    );
    assert.equal((JSON.parse(r.stdout) as Report).events, 10);
    // The advice works.
    const piped = run(["--json", "-"], spawnSync("xzcat", [f]).stdout);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal((JSON.parse(piped.stdout) as Report).events, 10);
  });

  test("a journald file is refused with the journalctl command that reads it, and that command's output yields the events", {
    skip: !JOURNAL_REMOTE || !HAVE_JOURNALCTL ? "needs journalctl and systemd-journal-remote" : false,
  }, () => {
    const msg =
      "NOTICE[2191]: res_pjsip/pjsip_distributor.c:591 in log_failed_request: Request 'REGISTER' from '<sip:1001@203.0.113.10>' failed for '198.51.100.23:5060' (callid: j1) - Failed to authenticate";
    const exp = [
      "__REALTIME_TIMESTAMP=1715682068020117",
      "__MONOTONIC_TIMESTAMP=1",
      "_BOOT_ID=0123456789abcdef0123456789abcdef",
      "_HOSTNAME=pbx1",
      "SYSLOG_IDENTIFIER=asterisk",
      "_PID=1234",
      `MESSAGE=${msg}`,
      "",
      "",
    ].join("\n");
    const jf = join(dir, "system.journal");
    const w = spawnSync(JOURNAL_REMOTE!, ["-o", jf, "-"], { input: exp, encoding: "utf8" });
    assert.equal(w.status, 0, w.stderr);
    const r = run(["--json", jf]);
    assert.equal(r.code, 66);
    assert.equal(
      r.stderr,
      `sipwarden: ${jf}: a systemd journal file, not a text log; read it through a pipe: journalctl --file ${jf} -o short-iso | sipwarden test -\n`,
    );
    const text = spawnSync("journalctl", ["--file", jf, "-o", "short-iso"], { encoding: "utf8" });
    assert.equal(text.status, 0, text.stderr);
    const piped = run(["--json", "--no-rules", "-"], text.stdout);
    assert.equal(piped.code, 0, piped.stderr);
    const rep = JSON.parse(piped.stdout) as Report;
    assert.equal(rep.events, 1, text.stdout);
    assert.equal(rep.addresses[0]!.ip, "198.51.100.23");
  });
});
