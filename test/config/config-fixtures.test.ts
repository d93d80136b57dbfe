/**
 * Config fixtures: every valid file loads; every invalid file fails with the error code, the
 * path and the line named in its `# expect-error: CODE PATH LINE` header (`-` = no path,
 * 0 = no line). The shipped example config must validate too.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { defaultConfig, loadConfig, parseConfigText } from "../../src/config/load.js";
import { isSipwardenError } from "../../src/core/errors.js";
import { FIXTURES, ROOT } from "../helpers/paths.js";

const dir = join(FIXTURES, "config");

describe("config fixtures", () => {
  for (const f of readdirSync(join(dir, "valid"))) {
    it(`valid/${f} loads and is frozen`, () => {
      const { config } = loadConfig(join(dir, "valid", f), true);
      assert.ok(Object.isFrozen(config) && Object.isFrozen(config.policy));
    });
  }
  for (const f of readdirSync(join(dir, "invalid"))) {
    it(`invalid/${f} is rejected with the expected code, path and line`, () => {
      const file = join(dir, "invalid", f);
      const header = /^# expect-error: (\S+) (\S+) (\d+)$/m.exec(readFileSync(file, "utf8"));
      assert.ok(header, "fixture needs an expect-error header");
      const [, code, path, line] = header;
      assert.throws(
        () => loadConfig(file, true),
        (e: unknown) => {
          assert.ok(isSipwardenError(e), String(e));
          assert.equal(e.code, code);
          assert.equal(e.file, file);
          if (path !== "-") assert.equal(e.path, path);
          if (line !== "0") assert.equal(e.line, Number(line));
          return true;
        },
      );
    });
  }

  it("the shipped example config validates and equals the embedded defaults", () => {
    const text = readFileSync(join(ROOT, "config", "sipwarden.yaml"), "utf8");
    const cfg = parseConfigText(text, "config/sipwarden.yaml");
    assert.deepEqual(JSON.parse(JSON.stringify(cfg)), JSON.parse(JSON.stringify(defaultConfig())));
  });

  it("a missing optional config file means the embedded defaults", () => {
    const { config, files } = loadConfig("/nonexistent/sipwarden.yaml");
    assert.deepEqual(files, []);
    assert.equal(config.enforce.backend, "auto");
  });

  it("a missing required config file is CONFIG_READ", () => {
    assert.throws(
      () => loadConfig("/nonexistent/sipwarden.yaml", true),
      (e: unknown) => isSipwardenError(e, "CONFIG_READ"),
    );
  });
});
