import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { isSipwardenError } from "../../src/core/errors.js";
import { driverPackage, loadDriver, NAPI_DRIVER_FROM, sqlite } from "../../src/store/sqlite-driver.js";

describe("SQLite driver", () => {
  it("takes better-sqlite3 13 (Node-API) from Node.js 22 on, and 12 on Node.js 20", () => {
    assert.equal(NAPI_DRIVER_FROM, 22);
    assert.equal(driverPackage(20), "better-sqlite3-node20");
    assert.equal(driverPackage(22), "better-sqlite3");
    assert.equal(driverPackage(24), "better-sqlite3");
    assert.equal(driverPackage(26), "better-sqlite3");
  });

  it("says which driver failed to load, why, and what to do", () => {
    const missing = (id: string) => {
      throw new Error(`Cannot find module '${id}'`);
    };
    assert.throws(
      () => loadDriver(20, missing),
      (e: unknown) =>
        isSipwardenError(e) &&
        e.code === "STORE_FAILED" &&
        e.message ===
          "the SQLite driver for Node.js 20 (better-sqlite3-node20) cannot be loaded: Cannot find module " +
            "'better-sqlite3-node20'. Run `npm ci` again under this Node.js, which installs the driver for it, " +
            "or upgrade to Node.js 22 or later",
    );
    assert.throws(
      () => loadDriver(24, missing),
      (e: unknown) =>
        isSipwardenError(e) && /\(better-sqlite3\) cannot be loaded: .*installs the driver for it$/.test(e.message),
    );
  });

  it("loads the build for this Node.js, which opens a database and runs SQL", () => {
    const major = Number.parseInt(process.versions.node, 10);
    const require = createRequire(import.meta.url);
    const version = (require(`${driverPackage(major)}/package.json`) as { version: string }).version;
    assert.equal(version.split(".")[0], major >= NAPI_DRIVER_FROM ? "13" : "12");
    const Database = sqlite();
    assert.equal(sqlite(), Database, "loaded once");
    const db = new Database(":memory:");
    try {
      db.exec("CREATE TABLE t (x INTEGER)");
      const insert = db.prepare("INSERT INTO t VALUES (?)");
      db.transaction(() => {
        for (let i = 0; i < 100; i++) insert.run(i);
      })();
      assert.deepEqual(db.prepare("SELECT count(*) AS n, sum(x) AS s FROM t").get(), { n: 100, s: 4950 });
      assert.throws(() => db.exec("INSERT INTO nowhere VALUES (1)"), Database.SqliteError);
    } finally {
      db.close();
    }
  });

  it("survives the garbage collection of freed statements (better-sqlite3 12 aborts there on Node.js 24)", () => {
    // In a child: statements become garbage and are collected by GCs that allocation triggers in
    // a timer callback, as in the daemon; then the process exits with the database still open.
    // better-sqlite3 12 built against Node.js >= 24.19 headers dies of SIGABRT in the Statement
    // destructor in both places (reproduced with 12.11.1 on Node.js 24.21.0).
    const driver = pathToFileURL(join(import.meta.dirname, "../../src/store/sqlite-driver.ts")).href;
    const code = `
      const { sqlite } = await import(${JSON.stringify(driver)});
      const db = new (sqlite())(":memory:");
      let keep = [];
      for (let i = 0; i < 200; i++) keep.push(db.prepare("SELECT " + i + " AS v"));
      for (let i = 0; i < 2000; i++) db.prepare("SELECT " + i + " AS w").get();
      await new Promise((resolve) => setTimeout(() => {
        keep = null;
        const junk = [];
        for (let i = 0; i < 2e6; i++) junk.push([i]);
        resolve(junk.length);
      }, 10));
      console.log("ok");`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr.slice(0, 600)}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "ok");
  });
});
