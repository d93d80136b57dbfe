/**
 * Rule fixtures: test/fixtures/rules/<rule-id>/{fires,quiet}.log are real-format log lines,
 * parsed with auto-detection and replayed through every shipped rule (time comes from the log
 * lines: the replay has no clock of its own). Header annotations give the parse context and the
 * complete list of expected bans, in order:
 *
 *   # context: {"zone":"UTC","now":"2024-06-01T00:00:00Z"}
 *   # policy: {"allowlist":["192.0.2.0/24"]}         (optional overrides)
 *   # ban: {"ip":"198.51.100.23","rule":"sip-auth-bruteforce","count":5,"duration":"1h"}
 *
 * `fires.log` must ban through its rule, `quiet.log` must not; other rules' bans must be listed
 * too, so a fixture also catches one rule stepping on another. Other `#` lines are comments.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseDuration } from "../../src/config/duration.js";
import type { SecurityEvent } from "../../src/core/events.js";
import type { PolicyOptions } from "../../src/detect/policy.js";
import { type BanSummary, replay } from "../../src/detect/replay.js";
import { loadRules } from "../../src/detect/rules.js";
import { LineClassifier } from "../../src/parsers/index.js";
import { FIXTURES } from "../helpers/paths.js";

const DIR = join(FIXTURES, "rules");
const rules = loadRules();

interface ExpectedBan {
  ip: string;
  rule: string;
  count: number;
  duration: string | number;
  first?: string;
  last?: string;
}

interface Fixture {
  events: SecurityEvent[];
  bans: ExpectedBan[];
  policy: Partial<PolicyOptions>;
  unparsed: string[];
}

function readRuleFixture(file: string): Fixture {
  let zone = "UTC";
  let now = Date.parse("2024-12-31T00:00:00Z");
  const bans: ExpectedBan[] = [];
  let policy: Partial<PolicyOptions> = {};
  const events: SecurityEvent[] = [];
  const unparsed: string[] = [];
  const classifier = new LineClassifier("auto");
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.startsWith("# context:")) {
      const c = JSON.parse(line.slice(10)) as { zone?: string; now?: string };
      if (c.zone) zone = c.zone;
      if (c.now) now = Date.parse(c.now);
    } else if (line.startsWith("# ban:")) bans.push(JSON.parse(line.slice(6)) as ExpectedBan);
    else if (line.startsWith("# policy:")) policy = JSON.parse(line.slice(9)) as Partial<PolicyOptions>;
    else if (line.startsWith("#") || line.trim() === "") continue;
    else {
      const ev = classifier.parse(line, { zone, now });
      if (ev) events.push(ev);
      else unparsed.push(line);
    }
  }
  return { events, bans, policy, unparsed };
}

function durationSeconds(d: string | number): number {
  if (typeof d === "number") return d;
  const ms = parseDuration(d);
  assert.ok(ms !== null, `bad duration ${d}`);
  return ms / 1000;
}

function check(actual: BanSummary[], expected: ExpectedBan[]): void {
  const show = (b: BanSummary[]) => b.map((x) => `${x.ip} ${x.rule} ×${x.count} ${x.duration}s`).join("; ") || "none";
  assert.equal(actual.length, expected.length, `bans: got ${show(actual)}`);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    assert.equal(a.ip, e.ip, `ban ${i}: ip (got ${show(actual)})`);
    assert.equal(a.rule, e.rule, `ban ${i}: rule`);
    assert.equal(a.count, e.count, `ban ${i}: count`);
    assert.equal(a.duration, durationSeconds(e.duration), `ban ${i}: duration`);
    if (e.first) assert.equal(a.first, e.first, `ban ${i}: first`);
    if (e.last) assert.equal(a.last, e.last, `ban ${i}: last`);
  });
}

describe("rule fixtures", () => {
  for (const r of rules) {
    describe(r.id, () => {
      for (const which of ["fires", "quiet"] as const) {
        const file = join(DIR, r.id, `${which}.log`);
        it(`${which}.log`, () => {
          assert.ok(existsSync(file), `missing fixture ${file}`);
          const fx = readRuleFixture(file);
          assert.ok(fx.events.length > 0, "the fixture yields no events");
          const bans = replay(fx.events, rules, { policy: fx.policy });
          check(bans, fx.bans);
          const mine = bans.filter((b) => b.rule === r.id);
          if (which === "fires") assert.ok(mine.length > 0, `${r.id} must fire`);
          else assert.equal(mine.length, 0, `${r.id} must not fire`);
        });
      }
    });
  }

  it("every fixture directory belongs to a shipped rule", () => {
    const ids = new Set(rules.map((r) => r.id));
    for (const d of readdirSync(DIR)) if (d !== "crowdsec") assert.ok(ids.has(d), `fixtures for unknown rule ${d}`);
  });
});
