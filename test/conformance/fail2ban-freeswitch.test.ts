/**
 * Conformance with fail2ban's annotated FreeSWITCH test log, read at test time from the
 * installed fail2ban package (not copied into this repository). Each line after
 * `# failJSON: {"match": true, "host": X}` must give an attack event for X; each `"match": false`
 * line must give no attack event. Deliberate differences are listed in
 * test/fixtures/conformance/freeswitch-differences.md; an unlisted one fails, and so does a
 * listed one that no longer happens.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isAttack, toRecord } from "../../src/core/events.js";
import { freeswitchParser } from "../../src/parsers/freeswitch.js";
import { FIXTURES } from "../helpers/paths.js";

const CORPUS = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/freeswitch";
const DIFFERENCES = join(FIXTURES, "conformance", "freeswitch-differences.md");
/** fail2ban's tests run with a frozen clock in 2005; year-less lines get their year from it. */
const CTX = { zone: "UTC", now: Date.parse("2005-08-14T12:00:00Z") };

interface FailJson {
  match: boolean;
  host?: string;
  time?: string;
  desc?: string;
}

/** Log lines listed for `corpus` in the differences table. */
function documented(corpus: string): Set<string> {
  const out = new Set<string>();
  for (const row of readFileSync(DIFFERENCES, "utf8").split("\n")) {
    const m = /^\| (\w+) \| `(.+?)` \|/.exec(row);
    if (m && m[1] === corpus) out.add(m[2]!);
  }
  return out;
}

function cases(): { json: FailJson; line: string; lineNo: number }[] {
  const out: { json: FailJson; line: string; lineNo: number }[] = [];
  let pending: FailJson | null = null;
  readFileSync(CORPUS, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.startsWith("# failJSON:")) {
        pending = JSON.parse(line.slice("# failJSON:".length)) as FailJson;
      } else if (line.trim() !== "" && !line.startsWith("#")) {
        assert.ok(pending, `${CORPUS}:${i + 1}: a log line without failJSON`);
        out.push({ json: pending, line, lineNo: i + 1 });
        pending = null;
      }
    });
  return out;
}

const missing = !existsSync(CORPUS);
const skip =
  missing && process.env.CI !== "true" ? `fail2ban corpus not installed (${CORPUS}); install fail2ban` : false;

describe("conformance: fail2ban freeswitch corpus", { skip }, () => {
  it("agrees on every annotated line, except the documented differences", () => {
    assert.ok(!missing, `fail2ban corpus is missing: ${CORPUS}`);
    const all = cases();
    assert.ok(all.length >= 9, `only ${all.length} annotated lines in ${CORPUS}`);
    const differences = new Set<string>();
    let matched = 0;
    for (const { json, line, lineNo } of all) {
      const ev = freeswitchParser.parse(line, CTX);
      const attack = ev !== null && isAttack(ev);
      const agrees = json.match ? attack && ev.remote.address === json.host : !attack;
      if (!agrees) {
        differences.add(line);
        continue;
      }
      if (json.match && ev) {
        matched++;
        // fail2ban's time has no zone and no fraction; ours is local time read in UTC here.
        if (json.time) assert.ok(toRecord(ev).time.startsWith(json.time), `${lineNo}: time ${toRecord(ev).time}`);
      }
    }
    assert.ok(matched >= 7, `only ${matched} matching lines agreed`);
    const listed = documented("fail2ban");
    const undocumented = [...differences].filter((l) => !listed.has(l));
    const stale = [...listed].filter((l) => !differences.has(l));
    assert.deepEqual(undocumented, [], "differences not listed in freeswitch-differences.md");
    assert.deepEqual(stale, [], "listed differences that no longer happen (remove them from the file)");
  });
});
