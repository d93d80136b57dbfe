/**
 * Schema migrations of the SQLite store. The schema version is SQLite's `user_version`; entry
 * `i` of MIGRATIONS takes a database from version `i` to `i + 1`. Append, never edit: a shipped
 * migration has already run on somebody's disk.
 */
import type { Sqlite } from "./sqlite-driver.js";

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema.
  `
  CREATE TABLE bans (
    target     TEXT PRIMARY KEY,
    rule       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('rule', 'manual', 'cluster')),
    since      INTEGER NOT NULL,
    expires_at INTEGER,
    count      INTEGER NOT NULL DEFAULT 0,
    detail     TEXT
  ) WITHOUT ROWID;
  CREATE INDEX bans_expiry ON bans (expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE ban_log (
    id         INTEGER PRIMARY KEY,
    target     TEXT NOT NULL,
    rule       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    since      INTEGER NOT NULL,
    expires_at INTEGER,
    count      INTEGER NOT NULL,
    detail     TEXT,
    ended_at   INTEGER NOT NULL,
    ended_by   TEXT NOT NULL,
    end_reason TEXT
  );
  CREATE INDEX ban_log_target ON ban_log (target, ended_at);
  CREATE INDEX ban_log_ended ON ban_log (ended_at);

  CREATE TABLE offences (
    target TEXT NOT NULL,
    at     INTEGER NOT NULL
  );
  CREATE INDEX offences_target ON offences (target, at);
  CREATE INDEX offences_at ON offences (at);

  CREATE TABLE offsets (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- AUTOINCREMENT so that an id is never reused after the ring deletes old rows: a client
  -- resuming with sinceId must not miss events.
  CREATE TABLE events (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    ip   TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
  );

  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings `db` to SCHEMA_VERSION, each step in its own transaction. Returns the version found.
 * Throws a plain Error for a database newer than this build; the caller wraps it.
 */
export function migrate(db: Sqlite.Database): number {
  const found = db.pragma("user_version", { simple: true }) as number;
  if (found > SCHEMA_VERSION) {
    throw new Error(`schema version ${found} is newer than this sipwarden understands (${SCHEMA_VERSION})`);
  }
  for (let v = found; v < SCHEMA_VERSION; v++) {
    const sql = MIGRATIONS[v]!;
    db.transaction(() => {
      db.exec(sql);
      // PRAGMA does not take bound parameters; v is our own integer.
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return found;
}
