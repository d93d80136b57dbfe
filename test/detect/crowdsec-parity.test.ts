/**
 * Parity with CrowdSec: the hub's own scenario tests (../shared/corpus/crowdsec-hub/<test>/:
 * config.yaml, the log, scenario.assert) replayed through sipwarden with rules set to the
 * scenarios' parameters (test/fixtures/rules/crowdsec/: leaky buckets, capacity 5, leak 10 s, …).
 * The addresses flagged, the scenario and the event count must be those CrowdSec asserts.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { SecurityEvent } from "../../src/core/events.js";
import { replay } from "../../src/detect/replay.js";
import { loadRules } from "../../src/detect/rules.js";
import { LineClassifier } from "../../src/parsers/index.js";
import { FIXTURES, SHARED } from "../helpers/paths.js";

const CORPUS = join(SHARED, "corpus", "crowdsec-hub");
const rules = loadRules({ dirs: [join(FIXTURES, "rules", "crowdsec")] });

interface Expected {
  count: number;
  results: { ip: string; scenario: string; events?: number }[];
}

function readAssert(text: string): Expected {
  const count = Number(/^len\(results\) == (\d+)/m.exec(text)?.[1] ?? "0");
  const byIndex = new Map<number, { ip?: string; scenario?: string; events?: number }>();
  const at = (i: string) => {
    const k = Number(i);
    if (!byIndex.has(k)) byIndex.set(k, {});
    return byIndex.get(k)!;
  };
  for (const m of text.matchAll(/^"([^"]+)" in results\[(\d+)\]\.Overflow\.GetSources\(\)/gm)) at(m[2]!).ip = m[1]!;
  for (const m of text.matchAll(/^results\[(\d+)\]\.Overflow\.Alert\.GetScenario\(\) == "([^"]+)"/gm))
    at(m[1]!).scenario = m[2]!;
  for (const m of text.matchAll(/^results\[(\d+)\]\.Overflow\.Alert\.GetEventsCount\(\) == (\d+)/gm))
    at(m[1]!).events = Number(m[2]);
  const results = [...byIndex.values()].map((r) => ({ ip: r.ip!, scenario: r.scenario!, events: r.events }));
  return { count, results };
}

/** Scenario file names from config.yaml (`- ./scenarios/crowdsecurity/asterisk_bf.yaml`). */
function scenarios(config: string): string[] {
  return [...config.matchAll(/scenarios\/crowdsecurity\/([\w.-]+)\.yaml/g)].map((m) => m[1]!);
}

const tests = existsSync(CORPUS)
  ? readdirSync(CORPUS).filter((d) => {
      const a = join(CORPUS, d, "scenario.assert");
      return existsSync(a) && readFileSync(a, "utf8").trim() !== "";
    })
  : [];

describe("parity with CrowdSec scenarios", () => {
  it("finds the hub's scenario tests", () => assert.ok(tests.length >= 5, `only ${tests.length} in ${CORPUS}`));

  for (const t of tests) {
    it(t, () => {
      const dir = join(CORPUS, t);
      const config = readFileSync(join(dir, "config.yaml"), "utf8");
      const logFile = /^log_file: (.+)$/m.exec(config)?.[1]?.trim();
      assert.ok(logFile, "config.yaml names no log_file");
      // hubtest loads every scenario of a file: the fast and the slow variant of freeswitch-bf.
      const wanted = new Set(scenarios(config).flatMap((s) => [s, `${s}-slow`, s.replace(/-bf$/, "-slow-bf")]));
      const set = rules.filter((r) => wanted.has(r.id.replace(/^crowdsecurity\./, "")));
      assert.ok(set.length > 0, `no sipwarden rule for ${[...wanted].join(", ")}`);

      const classifier = new LineClassifier("auto");
      const ctx = { zone: "UTC", now: Date.parse("2024-01-01T00:00:00Z") };
      const events: SecurityEvent[] = [];
      for (const line of readFileSync(join(dir, logFile), "utf8").split("\n")) {
        if (line.trim() === "") continue;
        const ev = classifier.parse(line, ctx);
        assert.ok(ev && ev.kind !== "hostile", `line not understood: ${line}`);
        events.push(ev);
      }
      const bans = replay(events, set);
      const want = readAssert(readFileSync(join(dir, "scenario.assert"), "utf8"));
      assert.equal(bans.length, want.count, `flagged: ${JSON.stringify(bans)}`);
      for (const r of want.results) {
        const b = bans.find((x) => x.ip === r.ip && x.rule === r.scenario.replace("/", "."));
        assert.ok(b, `CrowdSec flags ${r.ip} (${r.scenario}); sipwarden: ${JSON.stringify(bans)}`);
        if (r.events !== undefined) assert.equal(b.count, r.events, "events in the overflowing bucket");
      }
    });
  }
});
