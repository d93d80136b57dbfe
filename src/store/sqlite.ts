/**
 * The default state store: one SQLite file (`<stateDir>/sipwarden.db`) through better-sqlite3
 * (the build for this Node.js release: see sqlite-driver.ts).
 *
 * Durability: WAL journal with `synchronous=NORMAL`. Every commit is written into the WAL with
 * write(2) before the statement returns, so it sits in the kernel's page cache and survives the
 * death of the process (SIGKILL, OOM kill, a crash) at any moment; only an operating-system crash
 * or power loss can drop the last few commits, because the WAL is fsync'ed at checkpoints rather
 * than at each commit. `test/store/sigkill.test.ts` checks the process-death half of this.
 */
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, renameSync } from "node:fs";
import { join } from "node:path";
import { normalizeCidr } from "../core/address.js";
import { isSipwardenError, SipwardenError } from "../core/errors.js";
import type { EventRecord } from "../core/events.js";
import { migrate } from "./migrations.js";
import { type Sqlite, sqlite } from "./sqlite-driver.js";
import { prepare, type RawBan } from "./statements.js";
import {
  type AddBanResult,
  BAN_SOURCES,
  type BanRow,
  type EndedBan,
  type NewBan,
  type RemoveInfo,
  type Store,
  type StoredEvent,
} from "./types.js";

export const STORE_FILE = "sipwarden.db";
const DAY = 86_400_000;

/** Options of `openSqliteStore`; all optional. */
export interface SqliteStoreOptions {
  /** Size of the recent-events ring (config `store.recentEvents`); 0 keeps none. Default 10,000. */
  recentEvents?: number;
  /** Offences older than this stop counting for escalation. Default 30 days. */
  offenceDecayMs?: number;
  /** Ended bans older than this are dropped from the log by `expireBans`. Default 90 days. */
  banLogRetentionMs?: number;
  /** Clock for defaults (`removeBan` time, `offences` window end). Default `Date.now`. */
  now?: () => number;
  /** Run `PRAGMA quick_check` on open to catch a damaged file early. Default true. */
  quickCheck?: boolean;
  /** How long a write waits for another process's lock (the CLI reading). Default 5 s. */
  busyTimeoutMs?: number;
}

const toBan = (r: RawBan): BanRow => ({
  target: r.target,
  rule: r.rule,
  reason: r.reason,
  source: r.source,
  since: r.since,
  expiresAt: r.expires_at,
  count: r.count,
  detail: r.detail,
});

/** The path of the database file inside `stateDir`. */
export function storePath(stateDir: string): string {
  return join(stateDir, STORE_FILE);
}

/**
 * The documented way out of STORE_FAILED for a damaged file: renames the database and its WAL
 * and shared-memory files to `sipwarden.db.bad-<time>` (kept for inspection) so that the next
 * open starts empty. Run it only with the daemon stopped. Returns the new name of the main file,
 * or undefined when there was no database.
 */
export function moveAside(stateDir: string, at: number = Date.now()): string | undefined {
  const file = storePath(stateDir);
  if (!existsSync(file)) return undefined;
  const stamp = new Date(at).toISOString().replace(/[-:]/g, "").replace(/\..*$/, "Z");
  const target = `${file}.bad-${stamp}`;
  for (const suffix of ["-wal", "-shm"]) if (existsSync(file + suffix)) renameSync(file + suffix, target + suffix);
  renameSync(file, target);
  return target;
}

/**
 * Opens (creating when missing) the store in `stateDir`. The directory is created with mode 0700
 * and the file with 0600: the store names every attacker and every trusted trunk. A file that
 * cannot be read or is damaged gives `STORE_FAILED` naming it; the store never starts empty in
 * its place, because that would silently drop every ban (see `moveAside`).
 */
export function openSqliteStore(stateDir: string, options: SqliteStoreOptions = {}): SqliteStore {
  const file = storePath(stateDir);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // Create the file ourselves so that it gets 0600; SQLite gives -wal/-shm the same mode.
    if (!existsSync(file)) closeSync(openSync(file, "a", 0o600));
  } catch (e) {
    throw new SipwardenError("STORE_FAILED", `cannot create the state directory ${stateDir}: ${message(e)}`, {
      file: stateDir,
      cause: e,
    });
  }
  // Outside the try below: a driver that cannot load says so, and is not taken for a damaged file.
  const Database = sqlite();
  let db: Sqlite.Database | undefined;
  try {
    db = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    // Keep the WAL from staying large after a burst of bans.
    db.pragma("journal_size_limit = 16777216");
    if (options.quickCheck !== false) {
      const rows = db.pragma("quick_check") as { quick_check: string }[];
      const bad = rows.map((r) => r.quick_check).filter((r) => r !== "ok");
      if (bad.length > 0) throw new Error(`integrity check failed: ${bad.slice(0, 3).join("; ")}`);
    }
    migrate(db);
    return new SqliteStore(db, file, options);
  } catch (e) {
    db?.close();
    throw new SipwardenError(
      "STORE_FAILED",
      `cannot open the state database ${file}: ${message(e)}. The bans recorded in it cannot be restored. ` +
        `If the file is damaged, stop sipwarden and move it aside (mv ${file} ${file}.bad, with its -wal and -shm ` +
        "files); sipwarden then starts with an empty state.",
      { file, cause: e },
    );
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The SQLite implementation of `Store`. Create it with `openSqliteStore`. */
export class SqliteStore implements Store {
  readonly file: string;
  private readonly db: Sqlite.Database;
  private readonly now: () => number;
  private readonly ringSize: number;
  private readonly decay: number;
  private readonly logRetention: number;
  private eventCount: number;
  private closed = false;

  private readonly q: ReturnType<typeof prepare>;
  private readonly addBanTx: (ban: NewBan) => AddBanResult;
  private readonly addEventsTx: (records: readonly EventRecord[]) => void;

  /** @internal use `openSqliteStore`. */
  constructor(db: Sqlite.Database, file: string, options: SqliteStoreOptions) {
    this.db = db;
    this.file = file;
    this.now = options.now ?? Date.now;
    this.ringSize = options.recentEvents ?? 10_000;
    this.decay = options.offenceDecayMs ?? 30 * DAY;
    this.logRetention = options.banLogRetentionMs ?? 90 * DAY;
    this.q = prepare(db);
    this.eventCount = this.q.countEvents.get()!.n;
    this.addBanTx = db.transaction((ban: NewBan) => this.upsertBan(ban));
    this.addEventsTx = db.transaction((records: readonly EventRecord[]) => this.insertEvents(records));
    if (this.getMeta("installId") === undefined) this.setMeta("installId", randomUUID());
  }

  addBan(ban: NewBan): AddBanResult {
    if (!BAN_SOURCES.includes(ban.source)) {
      throw new SipwardenError("STORE_FAILED", `unknown ban source ${JSON.stringify(ban.source)}`);
    }
    const target = targetKey(ban.target);
    this.open();
    try {
      return this.addBanTx(target === ban.target ? ban : { ...ban, target });
    } catch (e) {
      throw this.wrap("addBan", e);
    }
  }

  private upsertBan(ban: NewBan): AddBanResult {
    const old = this.q.getBan.get(ban.target);
    const count = ban.count ?? 0;
    if (old && (old.expires_at === null || old.expires_at > ban.since)) {
      const manual = old.source === "manual";
      const merged: RawBan = {
        target: old.target,
        rule: manual ? old.rule : ban.rule,
        reason: manual ? old.reason : ban.reason,
        source: manual ? "manual" : ban.source,
        since: old.since,
        expires_at: old.expires_at === null || ban.expiresAt === null ? null : Math.max(old.expires_at, ban.expiresAt),
        count: old.count + count,
        detail: manual ? old.detail : (ban.detail ?? old.detail),
      };
      this.q.updBan.run(merged);
      return { ban: toBan(merged), created: false };
    }
    if (old) {
      this.q.logBan.run({ ...old, ended_at: old.expires_at, ended_by: "expiry", end_reason: null });
      this.q.delBan.run(old.target);
    }
    const row: RawBan = {
      target: ban.target,
      rule: ban.rule,
      reason: ban.reason,
      source: ban.source,
      since: ban.since,
      expires_at: ban.expiresAt,
      count,
      detail: ban.detail ?? null,
    };
    this.q.insBan.run(row);
    return { ban: toBan(row), created: true };
  }

  removeBan(target: string, info: RemoveInfo): boolean {
    const key = targetKey(target);
    return this.run("removeBan", () => {
      const old = this.q.getBan.get(key);
      if (!old) return false;
      this.endBan(old, info.at ?? this.now(), info.by, info.reason ?? null);
      return true;
    });
  }

  activeBans(now: number): BanRow[] {
    return this.run("activeBans", () => this.q.active.all(now).map(toBan));
  }

  getBan(target: string, now?: number): BanRow | undefined {
    const n = normalizeCidr(target.trim());
    if (!n) return undefined;
    return this.run("getBan", () => {
      const r = this.q.getBan.get(n.text);
      if (!r || (now !== undefined && r.expires_at !== null && r.expires_at <= now)) return undefined;
      return toBan(r);
    });
  }

  expireBans(now: number): BanRow[] {
    return this.run("expireBans", () => {
      const gone = this.q.expired.all(now);
      for (const r of gone) this.endBan(r, r.expires_at!, "expiry", null);
      // Housekeeping rides along with the periodic expiry sweep.
      this.q.pruneOff.run(now - this.decay);
      this.q.pruneLog.run(now - this.logRetention);
      return gone.map(toBan);
    });
  }

  clearBans(info: RemoveInfo = { by: "clear" }): number {
    return this.run("clearBans", () => {
      const all = this.q.allBans.all();
      const at = info.at ?? this.now();
      for (const r of all) this.endBan(r, at, info.by, info.reason ?? null);
      return all.length;
    });
  }

  banLog(options: { target?: string; limit?: number } = {}): EndedBan[] {
    const limit = options.limit ?? 100;
    return this.run("banLog", () => {
      const rows =
        options.target === undefined ? this.q.logAll.all(limit) : this.q.logOf.all(targetKey(options.target), limit);
      return rows.map((r) => ({
        ...toBan(r),
        id: r.id,
        endedAt: r.ended_at,
        endedBy: r.ended_by,
        endReason: r.end_reason,
      }));
    });
  }

  private endBan(r: RawBan, at: number, by: string, reason: string | null): void {
    this.q.logBan.run({ ...r, ended_at: at, ended_by: by, end_reason: reason });
    this.q.delBan.run(r.target);
  }

  offences(target: string, now: number = this.now()): number {
    const key = targetKey(target);
    return this.run("offences", () => this.q.countOff.get(key, now - this.decay)!.n);
  }

  record(target: string, at: number): void {
    const key = targetKey(target);
    this.run("record", () => {
      this.q.pruneOffOf.run(key, at - this.decay);
      this.q.insOff.run(key, at);
    });
  }

  getOffset(key: string): string | undefined {
    return this.run("getOffset", () => this.q.getOff.get(key)?.value);
  }

  setOffset(key: string, value: string): void {
    this.run("setOffset", () => this.q.setOff.run(key, value, this.now()));
  }

  commitBatch<T>(fn: () => T): T {
    this.open();
    // Errors of the caller's own code pass through unchanged; SQLite's are wrapped.
    try {
      return this.db.transaction(fn)();
    } catch (e) {
      throw e instanceof sqlite().SqliteError ? this.wrap("commitBatch", e) : e;
    }
  }

  addEvents(records: readonly EventRecord[]): void {
    if (this.ringSize === 0 || records.length === 0) return;
    this.open();
    try {
      this.addEventsTx(records);
    } catch (e) {
      throw this.wrap("addEvents", e);
    }
  }

  private insertEvents(records: readonly EventRecord[]): void {
    for (const r of records) this.q.insEvent.run(Date.parse(r.time) || 0, r.ip, r.kind, JSON.stringify(r));
    this.eventCount += records.length;
    // Trim in batches (10% slack) so that the delete does not run on every insert.
    if (this.eventCount > this.ringSize + Math.max(16, Math.floor(this.ringSize / 10))) {
      this.q.trimEvents.run(this.ringSize - 1);
      this.eventCount = this.q.countEvents.get()!.n;
    }
  }

  recentEvents(limit: number, sinceId?: number): StoredEvent[] {
    return this.run("recentEvents", () => {
      const rows = sinceId === undefined ? this.q.newestEvents.all(limit) : this.q.eventsAfter.all(sinceId, limit);
      return rows.map((r) => ({ ...(JSON.parse(r.data) as EventRecord), id: r.id }));
    });
  }

  getMeta(key: string): string | undefined {
    return this.run("getMeta", () => this.q.getMeta.get(key)?.value);
  }

  setMeta(key: string, value: string): void {
    this.run("setMeta", () => this.q.setMeta.run(key, value));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The last connection checkpoints and removes the WAL on close.
    this.db.close();
  }

  private open(): void {
    if (this.closed) throw new SipwardenError("STORE_FAILED", "the state store is closed", { file: this.file });
  }

  private run<T>(op: string, fn: () => T): T {
    this.open();
    try {
      return fn();
    } catch (e) {
      throw this.wrap(op, e);
    }
  }

  private wrap(op: string, e: unknown): SipwardenError {
    if (isSipwardenError(e)) return e;
    return new SipwardenError("STORE_FAILED", `${op} failed on ${this.file}: ${message(e)}`, {
      file: this.file,
      cause: e,
    });
  }
}

/** The normalised target, or ADDRESS_INVALID: only IP literals and CIDRs reach the store. */
function targetKey(target: string): string {
  const n = normalizeCidr(target.trim());
  if (!n) throw new SipwardenError("ADDRESS_INVALID", `not an IP address or CIDR: ${JSON.stringify(target)}`);
  return n.text;
}
