/**
 * Resume positions for sources, and the store that keeps them.
 *
 * Ownership: a source only READS the store when it starts (plus one initial write for a file it
 * has never seen, so that a first run "at the end" is remembered). Every other write comes from
 * the daemon, after a record has been fully processed (parsed, detected, ban stored), through
 * `acknowledge()`. So a crash replays at most the records that were emitted but not yet
 * processed, and never skips one: "no line lost, none counted twice" holds as long as the
 * daemon commits a record's position in the same transaction as that record's effects.
 */
import { SipwardenError } from "../core/errors.js";
import type { RawRecord } from "./types.js";

/**
 * Where a file source stopped, with enough identity to notice that the file at that path is no
 * longer the one the offset belongs to.
 */
export interface FilePosition {
  readonly kind: "file";
  /** `st_dev` and `st_ino` in decimal (64-bit values do not fit a JS number). */
  readonly dev: string;
  readonly ino: string;
  /** Byte offset just after the last processed line. */
  readonly offset: number;
  /**
   * How many leading bytes of the file `headHash` covers (at most {@link HEAD_BYTES}). An
   * append-only file never changes its head, so a different hash means the file was replaced
   * or truncated and rewritten (copytruncate), even when the inode and size look right.
   */
  readonly headLen: number;
  /** Hex digest of the first `headLen` bytes. */
  readonly headHash: string;
}

/** Where a journald source stopped: the `__CURSOR` of the last processed entry. */
export interface CursorPosition {
  readonly kind: "cursor";
  readonly cursor: string;
}

export type Position = FilePosition | CursorPosition;

/** Bytes of a file's head that its fingerprint covers. */
export const HEAD_BYTES = 1024;

/**
 * Persistent resume positions, keyed by `RawRecord.source` (`file:/var/log/asterisk/full`,
 * `journald:kamailio.service`). Implementations: {@link MemoryOffsetStore} here, SQLite in
 * `store/`. Both calls are synchronous so that a store can commit a position in the same
 * transaction as the effects of the record it belongs to.
 */
export interface OffsetStore {
  get(key: string): Position | undefined;
  set(key: string, pos: Position): void;
}

/** A store that lives as long as the process: for tests, `--once` runs and dry runs. */
export class MemoryOffsetStore implements OffsetStore {
  readonly #map = new Map<string, Position>();

  get(key: string): Position | undefined {
    return this.#map.get(key);
  }

  set(key: string, pos: Position): void {
    this.#map.set(key, pos);
  }

  /** Every stored key and position, for status output and tests. */
  entries(): [string, Position][] {
    return [...this.#map.entries()];
  }
}

/**
 * The compact text form carried in `RawRecord.position` and suitable for a TEXT column:
 * `f1:<dev>:<ino>:<headLen>:<headHash>:<offset>` or `c1:<cursor>`. The offset comes last so that
 * a reader can build it as a fixed prefix plus a number for every line.
 */
export function encodePosition(pos: Position): string {
  if (pos.kind === "cursor") return `c1:${pos.cursor}`;
  return `${filePositionPrefix(pos.dev, pos.ino, pos.headLen, pos.headHash)}${pos.offset}`;
}

/** The part of an encoded file position that does not change from one line to the next. */
export function filePositionPrefix(dev: string, ino: string, headLen: number, headHash: string): string {
  return `f1:${dev}:${ino}:${headLen}:${headHash}:`;
}

const FILE_RE = /^f1:(\d+):(\d+):(\d+):([0-9a-f]*):(\d+)$/;

/** Inverse of {@link encodePosition}; `null` for text that is not a position. */
export function decodePosition(text: string): Position | null {
  if (text.startsWith("c1:")) {
    const cursor = text.slice(3);
    return cursor === "" ? null : { kind: "cursor", cursor };
  }
  const m = FILE_RE.exec(text);
  if (!m) return null;
  const offset = Number(m[5]);
  const headLen = Number(m[3]);
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(headLen)) return null;
  return { kind: "file", dev: m[1]!, ino: m[2]!, headLen, headHash: m[4]!, offset };
}

/**
 * Commit a processed record's position: the daemon's half of the acknowledgement path. Call it
 * only after everything the record caused has been stored, and in the same transaction when
 * the store allows. Records without a position (e.g. the first lines of a multi-line journal
 * entry) are ignored.
 */
export function acknowledge(store: OffsetStore, record: Pick<RawRecord, "source" | "position">): void {
  if (record.position === undefined) return;
  const pos = decodePosition(record.position);
  if (!pos) throw new SipwardenError("SOURCE_FAILED", `record from ${record.source} has a malformed position`);
  store.set(record.source, pos);
}
