/** Shared by the store tests: temporary state directories, removed when the test file ends. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { openSqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite.js";
import type { NewBan } from "../../src/store/types.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "sipwarden-store-"));
  dirs.push(d);
  return d;
}

/** A new store in a state directory that does not exist yet. */
export function fresh(options: SqliteStoreOptions = {}) {
  const dir = join(tempDir(), "state");
  return { dir, store: openSqliteStore(dir, options) };
}

export const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export function ban(target: string, over: Partial<NewBan> = {}): NewBan {
  return {
    target,
    rule: "sip-auth-bruteforce",
    reason: "5 failed auths in 1m",
    source: "rule",
    since: T0,
    expiresAt: T0 + HOUR,
    count: 5,
    ...over,
  };
}
