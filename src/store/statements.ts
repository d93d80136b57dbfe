/**
 * The SQL of the SQLite store, prepared once per connection: the hot paths never compile SQL.
 * Row shapes are the tables' own (snake_case); `sqlite.ts` maps them to the public types.
 */
import type { Sqlite } from "./sqlite-driver.js";
import type { BanSource } from "./types.js";

export interface RawBan {
  target: string;
  rule: string;
  reason: string;
  source: BanSource;
  since: number;
  expires_at: number | null;
  count: number;
  detail: string | null;
}

export interface RawEnded extends RawBan {
  id: number;
  ended_at: number;
  ended_by: string;
  end_reason: string | null;
}

/** Every statement, prepared once: the hot paths never compile SQL. */
export function prepare(db: Sqlite.Database) {
  return {
    getBan: db.prepare<[string], RawBan>("SELECT * FROM bans WHERE target = ?"),
    insBan: db.prepare(
      "INSERT INTO bans (target, rule, reason, source, since, expires_at, count, detail) " +
        "VALUES (@target, @rule, @reason, @source, @since, @expires_at, @count, @detail)",
    ),
    updBan: db.prepare(
      "UPDATE bans SET rule = @rule, reason = @reason, source = @source, since = @since, " +
        "expires_at = @expires_at, count = @count, detail = @detail WHERE target = @target",
    ),
    delBan: db.prepare<[string]>("DELETE FROM bans WHERE target = ?"),
    logBan: db.prepare(
      "INSERT INTO ban_log (target, rule, reason, source, since, expires_at, count, detail, ended_at, ended_by, end_reason) " +
        "VALUES (@target, @rule, @reason, @source, @since, @expires_at, @count, @detail, @ended_at, @ended_by, @end_reason)",
    ),
    active: db.prepare<[number], RawBan>(
      "SELECT * FROM bans WHERE expires_at IS NULL OR expires_at > ? ORDER BY since, target",
    ),
    allBans: db.prepare<[], RawBan>("SELECT * FROM bans ORDER BY since, target"),
    expired: db.prepare<[number], RawBan>(
      "SELECT * FROM bans WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, target",
    ),
    logAll: db.prepare<[number], RawEnded>("SELECT * FROM ban_log ORDER BY ended_at DESC, id DESC LIMIT ?"),
    logOf: db.prepare<[string, number], RawEnded>(
      "SELECT * FROM ban_log WHERE target = ? ORDER BY ended_at DESC, id DESC LIMIT ?",
    ),
    pruneLog: db.prepare<[number]>("DELETE FROM ban_log WHERE ended_at < ?"),
    countOff: db.prepare<[string, number], { n: number }>(
      "SELECT count(*) AS n FROM offences WHERE target = ? AND at > ?",
    ),
    insOff: db.prepare<[string, number]>("INSERT INTO offences (target, at) VALUES (?, ?)"),
    pruneOffOf: db.prepare<[string, number]>("DELETE FROM offences WHERE target = ? AND at <= ?"),
    pruneOff: db.prepare<[number]>("DELETE FROM offences WHERE at <= ?"),
    getOff: db.prepare<[string], { value: string }>("SELECT value FROM offsets WHERE key = ?"),
    setOff: db.prepare<[string, string, number]>(
      "INSERT INTO offsets (key, value, updated_at) VALUES (?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    ),
    insEvent: db.prepare<[number, string | null, string, string]>(
      "INSERT INTO events (time, ip, kind, data) VALUES (?, ?, ?, ?)",
    ),
    // Keeps the newest `?` rows (the offset is ringSize - 1).
    trimEvents: db.prepare<[number]>(
      "DELETE FROM events WHERE id < (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
    ),
    countEvents: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM events"),
    newestEvents: db.prepare<[number], { id: number; data: string }>(
      "SELECT id, data FROM (SELECT id, data FROM events ORDER BY id DESC LIMIT ?) ORDER BY id",
    ),
    eventsAfter: db.prepare<[number, number], { id: number; data: string }>(
      "SELECT id, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
    ),
    getMeta: db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?"),
    setMeta: db.prepare<[string, string]>(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
  };
}
