import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { isSipwardenError, type SipwardenError } from "../../src/core/errors.js";
import { loadRules, parseRule, SHIPPED_RULES_DIR } from "../../src/detect/rules.js";

const VALID = `id: x-bf
description: test
filter:
  kind: [auth_failed]
type: threshold
count: 5
window: 10m
ban: 1h
`;

function fails(text: string, file = "rules/x.yaml"): SipwardenError {
  try {
    parseRule(text, file);
  } catch (e) {
    assert.ok(isSipwardenError(e, "RULE_INVALID"), `expected RULE_INVALID, got ${String(e)}`);
    return e as SipwardenError;
  }
  assert.fail("expected the rule to be rejected");
}

describe("rule files", () => {
  it("parses a valid rule; durations come out in ms; result is frozen", () => {
    const r = parseRule(VALID, "rules/x.yaml");
    assert.equal(r.id, "x-bf");
    assert.equal(r.window, 600_000);
    assert.equal(r.ban, 3_600_000);
    assert.equal(r.simulate, false);
    assert.equal(r.trust, true);
    assert.deepEqual(r.groupBy, ["ip"]);
    assert.equal(r.file, "rules/x.yaml");
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.filter));
  });

  it("a bad duration names file, line and path", () => {
    const e = fails(VALID.replace("window: 10m", "window: ten minutes"));
    assert.equal(e.describe(), 'rules/x.yaml:7: window: expected a duration like "10m"');
  });

  it("an unknown key is an error, with its line", () => {
    const e = fails(VALID + "colour: red\n");
    assert.equal(e.path, "colour");
    assert.equal(e.line, 9);
    assert.match(e.message, /unknown key "colour"/);
    const f = fails(VALID.replace("  kind: [auth_failed]", "  kind: [auth_failed]\n  kinds: [x]"));
    assert.equal(f.path, "filter.kinds");
    assert.equal(f.line, 5);
  });

  it("only attack kinds may be filtered on", () => {
    const e = fails(VALID.replace("[auth_failed]", "[auth_failed, auth_ok]"));
    assert.equal(e.path, "filter.kind[1]");
    assert.match(e.message, /not an attack kind/);
  });

  it("primitive parameters must fit the type", () => {
    assert.equal(fails(VALID.replace("count: 5\n", "")).path, "count");
    assert.equal(fails(VALID + "rate: 5\n").path, "rate");
    assert.equal(fails(VALID + "capacity: 5\nleak: 10s\n").path, "capacity");
    assert.equal(fails(VALID.replace("type: threshold", "type: instant")).path, "count");
    assert.equal(fails(VALID.replace("type: threshold", "type: flood")).path, "type");
    assert.equal(fails(VALID.replace("count: 5\nwindow: 10m\n", "capacity: 5\n")).path, "leak");
    assert.equal(fails(VALID.replace("ban: 1h", "ban: 0s")).path, "ban");
  });

  it("leaky-bucket form, distinct default field, density", () => {
    const r = parseRule(VALID.replace("count: 5\nwindow: 10m\n", "capacity: 5\nleak: 10s\n"));
    assert.equal(r.capacity, 5);
    assert.equal(r.leak, 10_000);
    const d = parseRule(VALID.replace("type: threshold", "type: distinct"));
    assert.equal(d.field, "account");
    const f = parseRule(VALID.replace("type: threshold\ncount: 5\nwindow: 10m", "type: density\nrate: 30\nper: 2s"));
    assert.equal(f.rate, 30);
    assert.equal(f.per, 2000);
    assert.equal(f.trust, false, "trust never applies to density rules");
  });

  it("trust defaults off for scanner/flood/UA rules, and cannot be forced on", () => {
    const ua = VALID.replace("  kind: [auth_failed]", "  userAgent: friendly-scanner");
    assert.equal(parseRule(ua).trust, false);
    assert.equal(fails(ua + "trust: true\n").path, "trust");
    const flood = VALID.replace("[auth_failed]", "[flood]");
    assert.equal(parseRule(flood).trust, false);
    assert.equal(parseRule(VALID + "trust: false\n").trust, false);
  });

  it("groupBy must include the address", () => {
    assert.deepEqual(parseRule(VALID + "groupBy: [ip, account]\n").groupBy, ["ip", "account"]);
    assert.equal(fails(VALID + "groupBy: [account]\n").path, "groupBy");
  });

  it("YAML syntax errors carry the line", () => {
    const e = fails("id: x\ndescription: [unclosed\n");
    assert.match(e.message, /YAML syntax/);
    assert.ok(e.line !== undefined);
  });
});

describe("rule sets", () => {
  const dir = mkdtempSync(join(tmpdir(), "sipwarden-rules-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("loads the shipped rules", () => {
    const rules = loadRules();
    const ids = rules.map((r) => r.id);
    for (const id of [
      "sip-auth-bruteforce",
      "sip-extension-enumeration",
      "sip-unknown-extension",
      "ami-auth-bruteforce",
      "sip-scanner-agent",
      "kamailio-pike-block",
      "freeswitch-auth-failure",
    ])
      assert.ok(ids.includes(id), `missing shipped rule ${id}`);
    const bf = rules.find((r) => r.id === "sip-auth-bruteforce")!;
    assert.equal(bf.count, 5);
    assert.equal(bf.window, 600_000);
    assert.equal(bf.ban, 3_600_000);
    assert.ok(bf.file?.startsWith(SHIPPED_RULES_DIR));
  });

  it("every shipped rule's id is its file name", () => {
    for (const r of loadRules()) assert.equal(r.file, join(SHIPPED_RULES_DIR, `${r.id}.yaml`));
  });

  it("reads a directory in name order, rejects duplicate ids, applies disable", () => {
    const d = join(dir, "set");
    mkdirSync(d);
    writeFileSync(join(d, "b.yaml"), VALID.replace("x-bf", "b"));
    writeFileSync(join(d, "a.yml"), VALID.replace("x-bf", "a"));
    writeFileSync(join(d, "notes.txt"), "not a rule");
    assert.deepEqual(
      loadRules({ dirs: [d] }).map((r) => r.id),
      ["a", "b"],
    );
    assert.deepEqual(
      loadRules({ dirs: [d], disable: ["a"] }).map((r) => r.id),
      ["b"],
    );
    assert.throws(
      () => loadRules({ dirs: [d], disable: ["nope"] }),
      (e: unknown) => isSipwardenError(e, "RULE_INVALID") && e.path === "rules.disable[0]",
    );
    writeFileSync(join(d, "c.yaml"), VALID.replace("x-bf", "a"));
    assert.throws(
      () => loadRules({ dirs: [d] }),
      (e: unknown) => isSipwardenError(e, "RULE_INVALID") && e.path === "id" && /duplicate/.test(e.message),
    );
  });

  it("a missing or empty directory is an error", () => {
    assert.throws(
      () => loadRules({ dirs: [join(dir, "absent")] }),
      (e: unknown) => isSipwardenError(e, "RULE_INVALID"),
    );
    const empty = join(dir, "empty");
    mkdirSync(empty);
    assert.throws(() => loadRules({ dirs: [empty] }), /no rule files/);
  });

  it("an invalid file in a set names that file", () => {
    const d = join(dir, "bad");
    mkdirSync(d);
    writeFileSync(join(d, "asterisk-bf.yaml"), VALID.replace("window: 10m", 'window: "10 minutes"'));
    assert.throws(
      () => loadRules({ dirs: [d] }),
      (e: unknown) =>
        isSipwardenError(e, "RULE_INVALID") &&
        e.describe() === `${join(d, "asterisk-bf.yaml")}:7: window: expected a duration like "10m"`,
    );
  });
});
