import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { moveAside, openSqliteStore, storePath } from "../../src/store/sqlite.js";
import { type Sqlite, sqlite } from "../../src/store/sqlite-driver.js";
import { ban, fresh, T0, tempDir } from "./helpers.js";

const Database = sqlite();

describe("open", () => {
  test("creates the directory 0700 and the file 0600", () => {
    const { dir, store } = fresh();
    store.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(storePath(dir)).mode & 0o777, 0o600);
  });

  test("uses WAL with synchronous=NORMAL and records the schema version and an install id", () => {
    const { dir, store } = fresh();
    const id = store.getMeta("installId");
    assert.match(id ?? "", /^[0-9a-f-]{36}$/);
    store.close();
    const db = new Database(storePath(dir), { readonly: true });
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("user_version", { simple: true }), 1);
    } finally {
      db.close();
    }
    const again = openSqliteStore(dir);
    assert.equal(again.getMeta("installId"), id, "install id is stable across opens");
    // synchronous is per connection: check the store's own connection.
    const sync = (again as unknown as { db: Sqlite.Database }).db.pragma("synchronous", { simple: true });
    assert.equal(sync, 1, "synchronous=NORMAL");
    again.close();
  });

  test("close is idempotent and later calls fail with STORE_FAILED", () => {
    const { store } = fresh();
    store.close();
    store.close();
    assert.throws(
      () => store.activeBans(T0),
      (e) => isSipwardenError(e, "STORE_FAILED"),
    );
    assert.throws(
      () => store.addBan(ban("198.51.100.1")),
      (e) => isSipwardenError(e, "STORE_FAILED"),
    );
  });

  test("a state directory that is a regular file gives STORE_FAILED naming it", () => {
    const base = tempDir();
    const notDir = join(base, "state");
    writeFileSync(notDir, "x");
    assert.throws(
      () => openSqliteStore(notDir),
      (e) => isSipwardenError(e, "STORE_FAILED") && e.message.includes(notDir),
    );
  });
});

describe("corrupt database", () => {
  test("a file that is not a database gives STORE_FAILED naming the file and the way out", () => {
    const dir = tempDir();
    const file = storePath(dir);
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    assert.throws(
      () => openSqliteStore(dir),
      (e) =>
        isSipwardenError(e, "STORE_FAILED") &&
        e.file === file &&
        e.message.includes(file) &&
        e.message.includes("move it aside") &&
        /not a database/.test(e.message),
    );
    // The bad file is left alone: the admin must see it, not find an empty store.
    assert.equal(readFileSync(file).length, 8192);
  });

  test("a damaged page inside a real database is caught on open", () => {
    const { dir, store } = fresh();
    // Enough rows for several b-tree pages, so that page 3 onwards holds table data.
    store.commitBatch(() => {
      for (let i = 0; i < 2000; i++)
        store.addBan(ban(`198.51.${Math.floor(i / 250)}.${i % 250}`, { detail: "x".repeat(50) }));
    });
    store.close();
    const file = storePath(dir);
    const buf = readFileSync(file);
    const pageSize = buf.readUInt16BE(16);
    assert.ok(buf.length > pageSize * 6);
    // Scribble over pages 3..5 but leave the header page alone.
    buf.fill(0xa5, pageSize * 2, pageSize * 5);
    writeFileSync(file, buf);
    assert.throws(
      () => openSqliteStore(dir),
      (e) => isSipwardenError(e, "STORE_FAILED") && e.message.includes(file),
    );
  });

  test("a database from a newer sipwarden is refused", () => {
    const { dir, store } = fresh();
    store.close();
    const db = new Database(storePath(dir));
    db.pragma("user_version = 99");
    db.close();
    assert.throws(
      () => openSqliteStore(dir),
      (e) => isSipwardenError(e, "STORE_FAILED") && /newer/.test(e.message),
    );
  });

  test("moveAside keeps the bad file for inspection and lets the next open start empty", () => {
    const dir = tempDir();
    writeFileSync(storePath(dir), "garbage that is not sqlite, repeated ".repeat(200));
    assert.throws(() => openSqliteStore(dir));
    const moved = moveAside(dir, T0);
    assert.equal(moved, `${storePath(dir)}.bad-20240501T120000Z`);
    assert.ok(readdirSync(dir).includes("sipwarden.db.bad-20240501T120000Z"));
    const store = openSqliteStore(dir);
    assert.deepEqual(store.activeBans(T0), []);
    store.close();
    assert.equal(moveAside(join(dir, "nothing-here")), undefined);
  });
});
