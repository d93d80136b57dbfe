/**
 * Conformance with the CrowdSec hub's Asterisk tests (`asterisk-*` under the shared corpus), read
 * at test time. For each test: `config.yaml` names the log file; `parser.assert` says, per log
 * line (its index in `results["s01-parse"]["crowdsecurity/asterisk-logs"]`), whether CrowdSec's
 * parser took it and with which `source_ip` and `username`. Where a test has no parser
 * assertions (asterisk-bf, asterisk-user-enum), `scenario.assert` lists the overflow's events in
 * order with their `source_ip` and `target_user`, which we compare with our attack events in
 * order.
 *
 * Every line CrowdSec parses must give an attack event (not hostile) with the same address and
 * account; every line it rejects must give no attack event. Differences are listed in
 * test/fixtures/conformance/asterisk-differences.md (corpus `crowdsec`).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type AttackEvent, isAttack, type SecurityEvent } from "../../src/core/events.js";
import { asteriskParser } from "../../src/parsers/asterisk.js";
import { FIXTURES, SHARED } from "../helpers/paths.js";

const HUB = join(SHARED, "corpus", "crowdsec-hub");
const DIFFERENCES = join(FIXTURES, "conformance", "asterisk-differences.md");
const CTX = { zone: "UTC", now: Date.parse("2025-01-01T00:00:00Z") };
const STAGE = 'results["s01-parse"]["crowdsecurity/asterisk-logs"]';

/** Log lines listed for `corpus` in the differences table. */
function documented(file: string, corpus: string): Set<string> {
  const out = new Set<string>();
  for (const row of readFileSync(file, "utf8").split("\n")) {
    const m = /^\| (\w+) \| `(.+?)` \|/.exec(row);
    if (m && m[1] === corpus) out.add(m[2]!);
  }
  return out;
}

/** A double-quoted Go/expr string literal or a single-quoted one, unescaped. */
function literal(s: string): string {
  if (s.startsWith("'")) return s.slice(1, -1);
  return JSON.parse(s) as string;
}

interface ParserAssert {
  count: number | null;
  success: Map<number, boolean>;
  ip: Map<number, string>;
  user: Map<number, string>;
}

function readParserAssert(text: string): ParserAssert {
  const out: ParserAssert = { count: null, success: new Map(), ip: new Map(), user: new Map() };
  for (const row of text.split("\n")) {
    const len = /^len\((.+)\) == (\d+)$/.exec(row);
    if (len && len[1] === STAGE) out.count = Number(len[2]);
    if (!row.startsWith(STAGE)) continue;
    const m = /^\[(\d+)\]\.(Success|Evt\.Parsed\["(\w+)"\]) == (.+)$/.exec(row.slice(STAGE.length));
    if (!m) continue;
    const i = Number(m[1]);
    if (m[2] === "Success") out.success.set(i, m[4] === "true");
    else if (m[3] === "source_ip") out.ip.set(i, literal(m[4]!));
    else if (m[3] === "username") out.user.set(i, literal(m[4]!));
  }
  return out;
}

/** `results[0].Overflow.Alert.Events[k].GetMeta("source_ip"|"target_user") == "…"`, by k. */
function readScenarioEvents(text: string): { ip?: string; user?: string }[] {
  const out: { ip?: string; user?: string }[] = [];
  for (const row of text.split("\n")) {
    const m = /^results\[0\]\.Overflow\.Alert\.Events\[(\d+)\]\.GetMeta\("(source_ip|target_user)"\) == (.+)$/.exec(
      row,
    );
    if (!m) continue;
    const k = Number(m[1]);
    const e = out[k] ?? {};
    out[k] = e;
    if (m[2] === "source_ip") e.ip = literal(m[3]!);
    else e.user = literal(m[3]!);
  }
  return out;
}

function logLines(dir: string): string[] {
  const cfg = readFileSync(join(dir, "config.yaml"), "utf8");
  const file = /^log_file: (.+)$/m.exec(cfg)?.[1]?.trim();
  assert.ok(file, `${dir}/config.yaml has no log_file`);
  return readFileSync(join(dir, file), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
}

const missing = !existsSync(HUB) || !readdirSync(HUB).some((d) => d.startsWith("asterisk"));
const skip = missing && process.env.CI !== "true" ? `CrowdSec hub corpus not found in ${HUB}` : false;

describe("conformance: CrowdSec hub asterisk tests", { skip }, () => {
  const dirs = missing ? [] : readdirSync(HUB).filter((d) => d.startsWith("asterisk-"));
  const differences = new Map<string, string>();
  let compared = 0;

  it("has the corpus", () => {
    assert.ok(!missing, `CrowdSec hub corpus is missing: ${HUB}`);
    assert.ok(dirs.length >= 4, `expected the 4 asterisk hub tests, found ${dirs.join(", ")}`);
  });

  for (const name of dirs) {
    it(name, () => {
      const dir = join(HUB, name);
      const lines = logLines(dir);
      const events: (SecurityEvent | null)[] = lines.map((l) => asteriskParser.parse(l, CTX));
      const pa = existsSync(join(dir, "parser.assert"))
        ? readParserAssert(readFileSync(join(dir, "parser.assert"), "utf8"))
        : null;
      if (pa && pa.success.size > 0) {
        if (pa.count !== null) assert.equal(pa.count, lines.length, "one s01-parse result per log line");
        for (const [i, ok] of pa.success) {
          const line = lines[i]!;
          const ev = events[i] ?? null;
          const attack = ev !== null && isAttack(ev);
          let why: string | null = null;
          if (!ok) why = attack ? `CrowdSec rejects it, we give ${ev.kind}` : null;
          else if (!attack) why = `CrowdSec parses it, we give ${ev ? ev.kind : "nothing"}`;
          else if (pa.ip.has(i) && ev.remote.address !== pa.ip.get(i)) why = `address ${ev.remote.address}`;
          else if (pa.user.has(i) && ev.account !== pa.user.get(i)) why = `account ${ev.account}`;
          if (why) differences.set(line, `${name}[${i}]: ${why}`);
          compared++;
        }
        return;
      }
      // No parser assertions: compare the scenario's events with ours, in order.
      const expected = readScenarioEvents(readFileSync(join(dir, "scenario.assert"), "utf8"));
      assert.ok(expected.length > 0, `${name}: neither parser nor scenario assertions`);
      const ours = events.filter((e): e is AttackEvent => e !== null && isAttack(e));
      assert.ok(
        ours.length >= expected.length,
        `${name}: ${ours.length} attack events for ${expected.length} expected`,
      );
      expected.forEach((e, k) => {
        const ev = ours[k]!;
        if (e.ip !== undefined) assert.equal(ev.remote.address, e.ip, `${name}: event ${k} address`);
        if (e.user !== undefined) assert.equal(ev.account, e.user, `${name}: event ${k} account`);
        compared++;
      });
    });
  }

  it("differs only where documented", () => {
    assert.ok(compared >= 20, `only ${compared} lines compared`);
    const listed = documented(DIFFERENCES, "crowdsec");
    const undocumented = [...differences].filter(([l]) => !listed.has(l)).map(([l, why]) => `${why}\n  ${l}`);
    const stale = [...listed].filter((l) => !differences.has(l));
    assert.deepEqual(undocumented, [], "differences not listed in asterisk-differences.md");
    assert.deepEqual(stale, [], "listed differences that no longer happen (remove them from the file)");
  });
});
