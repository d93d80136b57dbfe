/**
 * Conformance with fail2ban's annotated Asterisk test log, read at test time from the installed
 * fail2ban package (not copied into this repository).
 *
 * fail2ban's format (tests/samplestestcase.py): `# failJSON: {...}` applies to the next line only;
 * a non-comment line without one must not match. `"match": true` lines must give an attack event
 * (not hostile) whose address is `host`; `"match": false` lines must give no attack event. A
 * `time` (local time in fail2ban's test zone, CET/CEST, with its clock frozen at 2005-08-14) is
 * compared to the second. `desc` is free text. `constraint` (a Python expression) cannot be
 * evaluated here: such entries are skipped and counted. After `# filterOptions: … "logtype":
 * "journal"`, fail2ban feeds `test.prefix-line + line` with the journal's time; we feed what our
 * journald source produces for it, the journalctl short format with that same time.
 *
 * Deliberate differences are listed in test/fixtures/conformance/asterisk-differences.md; an
 * unlisted one fails, and so does a listed one that no longer happens.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isAttack, type SecurityEvent } from "../../src/core/events.js";
import { localToEpoch } from "../../src/core/time.js";
import { asteriskParser } from "../../src/parsers/asterisk.js";
import { FIXTURES } from "../helpers/paths.js";

const CORPUS = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/asterisk";
const DIFFERENCES = join(FIXTURES, "conformance", "asterisk-differences.md");
/** fail2ban's tests/utils.py: TZ=CET-01CEST-02,M3.5.0,M10.5.0 and MyTime frozen at TEST_NOW. */
const ZONE = "Europe/Zurich";
const TEST_NOW = 1_124_013_600_000;
const CTX = { zone: ZONE, now: TEST_NOW };
/** TEST_NOW as journalctl's short format prints it in that zone. */
const JOURNAL_TIME = "Aug 14 12:00:00";

interface FailJson {
  match?: boolean;
  host?: string;
  time?: string;
  desc?: string;
  constraint?: string;
}

interface Case {
  json: FailJson;
  /** The line as the parser sees it (journal lines get the journal prefix). */
  line: string;
  /** The line as written in the corpus (the key of the differences table). */
  raw: string;
  lineNo: number;
}

/** Log lines listed for `corpus` in the differences table. */
function documented(file: string, corpus: string): Set<string> {
  const out = new Set<string>();
  for (const row of readFileSync(file, "utf8").split("\n")) {
    const m = /^\| (\w+) \| `(.+?)` \|/.exec(row);
    if (m && m[1] === corpus) out.add(m[2]!);
  }
  return out;
}

function cases(): { cases: Case[]; skipped: number } {
  const out: Case[] = [];
  let skipped = 0;
  let journalPrefix: string | null = null;
  const lines = readFileSync(CORPUS, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$/.exec(lines[i]!);
    let json: FailJson;
    if (m) {
      const body = JSON.parse(m[2]!) as unknown;
      if (m[1] === "filterOptions") {
        const opts = (Array.isArray(body) ? body : [body]) as Record<string, string>[];
        const journal = opts.find((o) => o.logtype === "journal");
        journalPrefix = journal ? (journal["test.prefix-line"] ?? "") : null;
        continue;
      }
      if (m[1] !== "failJSON") continue;
      json = body as FailJson;
      i++;
    } else if (lines[i]!.startsWith("#") || lines[i]!.trim() === "") {
      continue;
    } else {
      json = { match: false };
    }
    const raw = lines[i] ?? "";
    if (json.constraint) {
      skipped++;
      continue;
    }
    const line = journalPrefix === null ? raw : `${JOURNAL_TIME} ${journalPrefix}${raw}`;
    out.push({ json, line, raw, lineNo: i + 1 });
  }
  return { cases: out, skipped };
}

/** fail2ban's `time` (local, no zone) → epoch seconds in its test zone. */
function expectedSeconds(t: string): number {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/.exec(t);
  assert.ok(m, `unreadable failJSON time ${t}`);
  const n = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return localToEpoch(ZONE, n[0], n[1] - 1, n[2], n[3], n[4], n[5]) / 1000;
}

/** Why a case disagrees, or null. */
function disagreement(c: Case, ev: SecurityEvent | null): string | null {
  const attack = ev !== null && isAttack(ev);
  if (!c.json.match) return attack ? `unexpected ${ev.kind} for ${ev.remote.address}` : null;
  if (!ev) return "no event";
  if (!isAttack(ev)) return `${ev.kind} event`;
  if (ev.remote.address !== c.json.host) return `address ${ev.remote.address}, not ${c.json.host}`;
  if (c.json.time && Math.floor(ev.time / 1000) !== expectedSeconds(c.json.time)) {
    return `time ${new Date(ev.time).toISOString()} vs ${c.json.time} (${ZONE})`;
  }
  return null;
}

const missing = !existsSync(CORPUS);
const skip =
  missing && process.env.CI !== "true" ? `fail2ban corpus not installed (${CORPUS}); install fail2ban` : false;

describe("conformance: fail2ban asterisk corpus", { skip }, () => {
  it("agrees on every annotated line, except the documented differences", () => {
    assert.ok(!missing, `fail2ban corpus is missing: ${CORPUS}`);
    const { cases: all, skipped } = cases();
    assert.ok(all.length >= 40, `only ${all.length} annotated lines in ${CORPUS}`);
    assert.equal(skipped, 0, "this corpus version has constraint entries; review them");
    const differences = new Map<string, string>();
    let agreed = 0;
    for (const c of all) {
      const why = disagreement(c, asteriskParser.parse(c.line, CTX));
      if (why) differences.set(c.raw, `${c.lineNo}: ${why}`);
      else if (c.json.match) agreed++;
    }
    assert.ok(agreed >= 35, `only ${agreed} matching lines agreed`);
    const listed = documented(DIFFERENCES, "fail2ban");
    const undocumented = [...differences].filter(([l]) => !listed.has(l)).map(([l, why]) => `${why}\n  ${l}`);
    const stale = [...listed].filter((l) => !differences.has(l));
    assert.deepEqual(undocumented, [], "differences not listed in asterisk-differences.md");
    assert.deepEqual(stale, [], "listed differences that no longer happen (remove them from the file)");
  });

  it("reads the journal entries (no timestamp of their own) with the journal's time", () => {
    const journal = cases().cases.filter((c) => c.line !== c.raw);
    assert.equal(journal.length, 2, "the corpus has two journal entries");
    for (const c of journal) {
      const ev = asteriskParser.parse(c.line, CTX);
      assert.ok(ev && isAttack(ev), `${c.lineNo}: no attack event`);
      assert.equal(ev.remote.address, c.json.host);
      assert.equal(ev.time, TEST_NOW, `${c.lineNo}: the journal's time, not the one inside the message`);
    }
  });
});
