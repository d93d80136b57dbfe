/**
 * A source produces raw records until its signal aborts. It never retries by itself: when
 * `run` rejects, the supervisor restarts it with back-off and counts the restart.
 */

export interface RawRecord {
  /** One logical line (no trailing newline), or one serialised event for structured sources. */
  readonly text: string;
  /** Source id, e.g. `file:/var/log/asterisk/full`, `journald:kamailio`, `ami:pbx1`. */
  readonly source: string;
  /** Parser format hint; `auto` lets the classifier decide per line; `ami`: one AMI event for `amiParser`. */
  readonly format: "auto" | "asterisk" | "kamailio" | "freeswitch" | "ami";
  /** Wall-clock receive time (epoch ms), for lag metrics only; detection uses the record's own time. */
  readonly received: number;
  /** An opaque resume position (file offset, journald cursor) to persist once the record is processed. */
  readonly position?: string;
  /**
   * Set on a marker record (its `text` is empty and is not a line): this many lines were read
   * and skipped on their raw bytes, because they certainly hold no event (an Asterisk VERBOSE
   * line, say). `position`, when present, is just past them.
   */
  readonly skipped?: number;
}

export type Emit = (record: RawRecord) => void;

export interface SourceStatus {
  /** Milliseconds between the newest record's write and its read, when known. */
  lagMs?: number;
  /** Free text for `sipwarden status`, e.g. the files being followed. */
  detail?: string;
}

export interface Source {
  readonly id: string;
  run(emit: Emit, signal: AbortSignal): Promise<void>;
  status?(): SourceStatus;
}
