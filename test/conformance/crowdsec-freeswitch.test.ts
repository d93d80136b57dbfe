/**
 * Conformance with the CrowdSec hub's FreeSWITCH tests (`.tests/freeswitch*`: config.yaml, the
 * log, parser.assert / scenario.assert), read at test time from the shared corpus. Every line
 * CrowdSec parses must give an attack event of the matching kind for the same address and
 * time. Deliberate differences are listed in test/fixtures/conformance/freeswitch-differences.md.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { type EventKind, isAttack, toRecord } from "../../src/core/events.js";
import { freeswitchParser } from "../../src/parsers/freeswitch.js";
import { FIXTURES, SHARED } from "../helpers/paths.js";

const HUB = join(SHARED, "corpus", "crowdsec-hub");
const DIFFERENCES = join(FIXTURES, "conformance", "freeswitch-differences.md");
/** The hub tests run in UTC (their MarshaledTime is the log's wall clock with a Z). */
const CTX = { zone: "UTC", now: Date.parse("2023-12-31T00:00:00Z") };

/** CrowdSec's `sub_type` for FreeSWITCH, and the kind sipwarden gives the same line. */
const SUB_TYPES: Record<string, EventKind> = {
  user_enumeration: "unknown_account",
  acl_reject: "acl_denied",
  auth_failure: "auth_failed",
};

interface Expected {
  ip?: string;
  subType?: string;
  timestamp?: string;
  success?: boolean;
}

function documented(corpus: string): Set<string> {
  const out = new Set<string>();
  for (const row of readFileSync(DIFFERENCES, "utf8").split("\n")) {
    const m = /^\| (\w+) \| `(.+?)` \|/.exec(row);
    if (m && m[1] === corpus) out.add(m[2]!);
  }
  return out;
}

function slot(map: Map<number, Expected>, i: number): Expected {
  let e = map.get(i);
  if (!e) {
    e = {};
    map.set(i, e);
  }
  return e;
}

/**
 * Expectations per log line index. parser.assert names lines by their index in the
 * `s01-parse` results; scenario.assert by their index in the overflow's events. Each of these
 * test logs pours every line into one bucket, in order, so both indexes are line numbers.
 */
function expectations(dir: string): Map<number, Expected> {
  const map = new Map<number, Expected>();
  const parser = join(dir, "parser.assert");
  for (const row of existsSync(parser) ? readFileSync(parser, "utf8").split("\n") : []) {
    let m = /^results\["s01-parse"\]\["crowdsecurity\/freeswitch"\]\[(\d+)\]\.Success == (true|false)$/.exec(row);
    if (m) slot(map, Number(m[1])).success = m[2] === "true";
    m = /^results\["s01-parse"\]\["crowdsecurity\/freeswitch"\]\[(\d+)\]\.Evt\.Parsed\["remote_ip"\] == "(.+)"$/.exec(
      row,
    );
    if (m) slot(map, Number(m[1])).ip = m[2]!;
    m = /^results\["s01-parse"\]\["crowdsecurity\/freeswitch"\]\[(\d+)\]\.Evt\.Meta\["sub_type"\] == "(.+)"$/.exec(row);
    if (m) slot(map, Number(m[1])).subType = m[2]!;
    m =
      /^results\["s02-enrich"\]\["crowdsecurity\/dateparse-enrich"\]\[(\d+)\]\.Evt\.Meta\["timestamp"\] == "(.+)"$/.exec(
        row,
      );
    if (m) slot(map, Number(m[1])).timestamp = m[2]!;
  }
  const scenario = join(dir, "scenario.assert");
  for (const row of existsSync(scenario) ? readFileSync(scenario, "utf8").split("\n") : []) {
    const m =
      /^results\[0\]\.Overflow\.Alert\.Events\[(\d+)\]\.GetMeta\("(source_ip|sub_type|timestamp)"\) == "(.+)"$/.exec(
        row,
      );
    if (!m) continue;
    const e = slot(map, Number(m[1]));
    e.success = true;
    if (m[2] === "source_ip") e.ip = m[3]!;
    else if (m[2] === "sub_type") e.subType = m[3]!;
    else e.timestamp = m[3]!;
  }
  return map;
}

const dirs = existsSync(HUB) ? readdirSync(HUB).filter((d) => d.startsWith("freeswitch")) : [];
const missing = dirs.length === 0;
const skip = missing && process.env.CI !== "true" ? `CrowdSec hub corpus not found in ${HUB}` : false;

describe("conformance: CrowdSec hub freeswitch tests", { skip }, () => {
  it("has the corpus", () => assert.ok(!missing, `no freeswitch* tests in ${HUB}`));

  for (const d of dirs) {
    it(d, () => {
      const dir = join(HUB, d);
      const config = parseYaml(readFileSync(join(dir, "config.yaml"), "utf8")) as {
        log_file: string;
        log_type: string;
      };
      assert.equal(config.log_type, "freeswitch");
      const lines = readFileSync(join(dir, config.log_file), "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "");
      const expected = expectations(dir);
      assert.ok(expected.size > 0, `${d}: no assertions found`);
      const differences = new Set<string>();
      let checked = 0;
      for (const [i, want] of expected) {
        const line = lines[i];
        assert.ok(line !== undefined, `${d}: assertion for line ${i}, but the log has ${lines.length} lines`);
        const ev = freeswitchParser.parse(line, CTX);
        if (want.success === false) {
          if (ev && isAttack(ev)) differences.add(line);
          continue;
        }
        const kind = want.subType === undefined ? undefined : SUB_TYPES[want.subType];
        assert.ok(want.subType === undefined || kind, `${d}: unknown sub_type ${want.subType}`);
        const agrees =
          ev !== null &&
          isAttack(ev) &&
          (want.ip === undefined || ev.remote.address === want.ip) &&
          (kind === undefined || ev.kind === kind);
        if (!agrees) {
          differences.add(line);
          continue;
        }
        checked++;
        // CrowdSec keeps µs; sipwarden keeps ms.
        if (want.timestamp)
          assert.equal(toRecord(ev).time.slice(0, 23), want.timestamp.slice(0, 23), `${d}[${i}] time`);
      }
      assert.ok(checked > 0 || differences.size > 0, `${d}: nothing was compared`);
      const listed = documented("crowdsec");
      const here = new Set(lines);
      const undocumented = [...differences].filter((l) => !listed.has(l));
      const stale = [...listed].filter((l) => here.has(l) && !differences.has(l));
      assert.deepEqual(undocumented, [], `${d}: differences not listed in freeswitch-differences.md`);
      assert.deepEqual(stale, [], `${d}: listed differences that no longer happen`);
    });
  }
});
