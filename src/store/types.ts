/**
 * The state store contract. The store is the source of truth for bans and read offsets: after a
 * crash, the restarted daemon re-applies every ban that has not expired (through the enforcer's
 * reconcile) and resumes every source where it stopped.
 *
 * Ownership: the daemon opens and closes the store. Every method is synchronous; a method that
 * returned has committed its write (unless it ran inside `commitBatch`, in which case the batch
 * commits when `commitBatch` returns). Failures are thrown as `SipwardenError` code `STORE_FAILED`
 * (or `ADDRESS_INVALID` for a target that is not an IP/CIDR); the store never retries by itself.
 */
import type { EventRecord } from "../core/events.js";

/** Who created a ban. A `manual` ban keeps its reason when a rule bans the same target again. */
export type BanSource = "rule" | "manual" | "cluster";

export const BAN_SOURCES: readonly BanSource[] = ["rule", "manual", "cluster"];

/** The input of `Store.addBan`. */
export interface NewBan {
  /** An IP address or CIDR; normalised by the store (`2001:DB8::1` → `2001:db8::1`). */
  readonly target: string;
  /** Rule id, or `manual` / the peer name for other sources. */
  readonly rule: string;
  /** Human reason shown in `sipwarden bans`, mails and the API. */
  readonly reason: string;
  readonly source: BanSource;
  /** Epoch ms the ban starts. */
  readonly since: number;
  /** Epoch ms the ban ends, or null for a permanent ban. */
  readonly expiresAt: number | null;
  /** Attempts that led to the ban; added to the stored count on a re-ban. */
  readonly count?: number;
  /** Free text (pattern id, user-agent, …). */
  readonly detail?: string;
}

/** An active ban as stored. */
export interface BanRow {
  readonly target: string;
  readonly rule: string;
  readonly reason: string;
  readonly source: BanSource;
  readonly since: number;
  readonly expiresAt: number | null;
  readonly count: number;
  readonly detail: string | null;
}

/** What `addBan` did: a new ban (`created`) or an existing one extended. */
export interface AddBanResult {
  readonly ban: BanRow;
  /** False when the target was already banned and the ban was extended. */
  readonly created: boolean;
}

/** Who lifted a ban and why; kept in the ban log. */
export interface RemoveInfo {
  /** `cli`, `api`, `cluster`, a user name, … */
  readonly by: string;
  readonly reason?: string;
  /** Epoch ms; the store's clock when absent. */
  readonly at?: number;
}

/** A ban that ended (expired, removed or cleared), from the ban log. */
export interface EndedBan extends BanRow {
  readonly id: number;
  readonly endedAt: number;
  /** `expiry`, `clear`, or the `by` of `removeBan`. */
  readonly endedBy: string;
  readonly endReason: string | null;
}

/**
 * Offence history for escalation (repeat offenders get longer bans). The policy calls
 * `offences` to size a ban and then `record` once the ban is issued. Offences older than the
 * store's decay (default 30 days) no longer count.
 */
export interface BanHistory {
  /**
   * Offences of `target` within the decay window ending at `now`. Pass the event time as `now`
   * when replaying logs, so that a replay gives the same escalation as the live run; it defaults
   * to the store's clock.
   */
  offences(target: string, now?: number): number;
  /** Records one offence of `target` at epoch ms `at`. */
  record(target: string, at: number): void;
}

/** A security event kept in the recent-events ring, with its store id (strictly increasing). */
export interface StoredEvent extends EventRecord {
  readonly id: number;
}

/** The state store. See the module comment for the durability and error contract. */
export interface Store extends BanHistory {
  /**
   * Adds a ban, or extends the existing ban of the same target: the later expiry wins (a
   * permanent ban stays permanent), counts add up, rule and reason become the newest ones
   * (except over a manual ban, which keeps its own). An existing ban that had already expired
   * at `since` is moved to the log and replaced. Once this returns (outside `commitBatch`), the
   * ban survives a SIGKILL of the process.
   */
  addBan(ban: NewBan): AddBanResult;
  /** Lifts a ban and logs who did it. False when the target had no ban. The lift survives a restart. */
  removeBan(target: string, info: RemoveInfo): boolean;
  /** Bans not yet expired at `now`, oldest first: what reconcile must put in the kernel. */
  activeBans(now: number): BanRow[];
  /** The stored ban of `target`; with `now`, a ban that expired by then counts as absent. */
  getBan(target: string, now?: number): BanRow | undefined;
  /** Moves every ban that expired at or before `now` to the log and returns them. */
  expireBans(now: number): BanRow[];
  /** Lifts every active ban (logged as `clear`); returns how many there were. */
  clearBans(info?: RemoveInfo): number;
  /** Ended bans, newest first, optionally of one target. */
  banLog(options?: { target?: string; limit?: number }): EndedBan[];

  /** The opaque position saved for a source key (`file:/var/log/asterisk/full`). */
  getOffset(key: string): string | undefined;
  setOffset(key: string, value: string): void;
  /**
   * Runs `fn` in one transaction: every write inside commits together when this returns, or
   * none does when `fn` throws. `fn` must be synchronous. Nested calls join the outer batch.
   */
  commitBatch<T>(fn: () => T): T;

  /** Appends events to the capped ring (one transaction for the whole array). */
  addEvents(records: readonly EventRecord[]): void;
  /**
   * Up to `limit` events, oldest first. Without `sinceId`: the newest `limit`. With `sinceId`:
   * the first `limit` events after that id (to page forward or resume a stream).
   */
  recentEvents(limit: number, sinceId?: number): StoredEvent[];

  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;

  /** Closes the database; further calls throw `STORE_FAILED`. Idempotent. */
  close(): void;
}
