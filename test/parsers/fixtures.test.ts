/**
 * Runs every annotated fixture under test/fixtures/logs through its parser, both with the
 * format named by the folder and with auto-detection. Also fails when a pattern id is never
 * exercised, when a file has no negative sample, and when a matching line contains none of
 * its parser's needles (the bulk prefilter would have skipped it).
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { toRecord } from "../../src/core/events.js";
import { BUILTIN_PARSERS, LineClassifier, type LogFormat } from "../../src/parsers/index.js";
import { readFixture } from "../helpers/fixture-file.js";
import { FIXTURES } from "../helpers/paths.js";

const LOGS = join(FIXTURES, "logs");
const exercised = new Set<string>();

function compare(actual: Record<string, unknown>, expect: Record<string, unknown>, where: string): void {
  for (const [k, v] of Object.entries(expect)) {
    assert.deepEqual(actual[k], v, `${where}: field ${k}: got ${JSON.stringify(actual[k])}, want ${JSON.stringify(v)}`);
  }
}

for (const server of Object.keys(BUILTIN_PARSERS) as LogFormat[]) {
  const dir = join(LOGS, server);
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".log"));
  } catch {
    /* reported below */
  }
  describe(`fixtures: ${server}`, () => {
    it("has fixture files", () => assert.ok(files.length > 0, `no fixtures in ${dir}`));
    for (const f of files) {
      it(f, () => {
        const cases = readFixture(join(dir, f));
        assert.ok(cases.length > 0, "empty fixture");
        assert.ok(
          cases.some((c) => c.expect === null),
          `${f}: has no negative sample (a line annotated "# expect: null")`,
        );
        const parser = BUILTIN_PARSERS[server];
        const auto = new LineClassifier("auto");
        for (const c of cases) {
          const where = `${f}:${c.lineNo}`;
          const ctx = { zone: c.zone, now: c.now };
          const ev = parser.parse(c.line, ctx);
          if (c.expect === null) {
            assert.equal(ev, null, `${where}: expected no event, got ${JSON.stringify(ev && toRecord(ev))}`);
            continue;
          }
          assert.ok(ev, `${where}: expected an event, got none`);
          const rec = toRecord(ev) as unknown as Record<string, unknown>;
          if (ev.kind === "hostile") rec.candidates = [...ev.candidates];
          compare(rec, c.expect, where);
          assert.ok(parser.patterns.includes(ev.pattern), `${where}: pattern ${ev.pattern} not listed in patterns`);
          assert.ok(
            parser.needles.some((n) => c.line.includes(n)),
            `${where}: line contains none of the ${server} parser's needles`,
          );
          exercised.add(ev.pattern);
          const autoEv = auto.parse(c.line, ctx);
          assert.deepEqual(autoEv && toRecord(autoEv), toRecord(ev), `${where}: auto-detection disagrees`);
        }
      });
    }
  });
}

describe("fixtures: coverage", () => {
  it("every pattern id is exercised by a fixture", () => {
    const all = Object.values(BUILTIN_PARSERS).flatMap((p) => p.patterns);
    const missing = all.filter((p) => !exercised.has(p));
    assert.deepEqual(missing, [], `patterns with no fixture: ${missing.join(", ")}`);
  });
});
