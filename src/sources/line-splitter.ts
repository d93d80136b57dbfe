/**
 * Splits a byte stream into lines while tracking file offsets, so that every line can carry the
 * offset just after it (its resume position).
 *
 * - Splits on `\n` in bytes and drops one trailing `\r`, so CRLF files read like LF files.
 * - A partial last line is held back until its newline arrives; `flush()` releases it when the
 *   caller knows the file is finished (rotated away).
 * - Lines are decoded as UTF-8 one by one; invalid bytes become U+FFFD instead of throwing.
 * - A line longer than `maxLineBytes` is reported once through `onOverflow` and dropped. Only
 *   `maxLineBytes` bytes are ever buffered: past that the splitter discards bytes until the next
 *   newline and resynchronises there.
 * - Empty lines produce no callback (they can hold no event) but still advance the offsets.
 * - With `skip`, a line it says yes to (judged on its raw bytes) is not decoded: it is counted,
 *   and at the end of each `push` the count and, when such a line was the last one, the offset
 *   after it go to `onSkipped`, so that positions still advance past skipped lines.
 */

/** Receives each complete line and the file offset just after its newline. */
export type LineHandler = (text: string, end: number) => void;

/** Told about a line that was dropped for being too long, by the offset where it starts. */
export type OverflowHandler = (start: number) => void;

/** A byte-level test that a line certainly holds no event; `end` excludes the newline. */
export type SkipLine = (buf: Uint8Array, start: number, end: number) => boolean;

/**
 * Told, once per `push`, how many lines were skipped in it, and the offset after the last line
 * when that one was skipped (else -1: a delivered line already carries a later offset).
 */
export type SkippedHandler = (count: number, end: number) => void;

export interface LineSplitterOptions {
  /** Longest line (in bytes, without the line terminator) that is delivered. */
  readonly maxLineBytes: number;
  readonly onLine: LineHandler;
  readonly onOverflow: OverflowHandler;
  readonly skip?: SkipLine;
  readonly onSkipped?: SkippedHandler;
}

const LF = 10;
const CR = 13;

export class LineSplitter {
  readonly #max: number;
  readonly #onLine: LineHandler;
  readonly #onOverflow: OverflowHandler;
  readonly #skip: SkipLine | null;
  readonly #onSkipped: SkippedHandler | null;
  #skipped = 0;
  #skippedEnd = -1;
  /** One spare byte so that a line of exactly `max` bytes followed by `\r` still fits. */
  readonly #carry: Buffer;
  #carryLen = 0;
  #skipping = false;
  #lineStart: number;
  #readPos: number;

  constructor(opts: LineSplitterOptions, offset = 0) {
    this.#max = opts.maxLineBytes;
    this.#onLine = opts.onLine;
    this.#onOverflow = opts.onOverflow;
    this.#skip = opts.skip && opts.onSkipped ? opts.skip : null;
    this.#onSkipped = opts.onSkipped ?? null;
    this.#carry = Buffer.allocUnsafe(opts.maxLineBytes + 1);
    this.#lineStart = offset;
    this.#readPos = offset;
  }

  /** Offset just after the last complete (delivered, empty or dropped) line. */
  get lineStart(): number {
    return this.#lineStart;
  }

  /** Offset of the next byte the splitter expects; ahead of `lineStart` by a partial line. */
  get readPos(): number {
    return this.#readPos;
  }

  /** Bytes of a partial line held back. */
  get pending(): number {
    return this.#readPos - this.#lineStart;
  }

  /**
   * Forget any partial line and continue at `offset`. With `skipping`, bytes up to the next
   * newline are discarded (used when starting in the middle of a line that cannot be shown).
   */
  reset(offset: number, skipping = false): void {
    this.#carryLen = 0;
    this.#skipping = skipping;
    this.#lineStart = offset;
    this.#readPos = offset;
  }

  /** Feed `buf[start, end)`, the bytes found at file offset `readPos`. */
  push(buf: Buffer, start: number, end: number): void {
    const view = buf.subarray(start, end);
    const base = this.#readPos;
    const n = view.length;
    let i = 0;
    while (i < n) {
      const nl = view.indexOf(LF, i);
      if (nl === -1) {
        this.#hold(view, i, n);
        break;
      }
      this.#finishLine(view, i, nl, base + nl + 1);
      i = nl + 1;
    }
    this.#readPos = base + n;
    if (this.#skipped > 0) {
      const count = this.#skipped;
      const end = this.#skippedEnd;
      this.#skipped = 0;
      this.#skippedEnd = -1;
      this.#onSkipped!(count, end);
    }
  }

  /** Deliver the partial last line, if any, as if a newline followed it. */
  flush(): void {
    if (!this.#skipping && this.#carryLen > 0) {
      let e = this.#carryLen;
      if (this.#carry[e - 1] === CR) e--;
      if (e > this.#max) this.#onOverflow(this.#lineStart);
      else if (e > 0) this.#onLine(this.#carry.toString("utf8", 0, e), this.#readPos);
    }
    this.#carryLen = 0;
    this.#skipping = false;
    this.#lineStart = this.#readPos;
  }

  /** Keep `view[i, n)`, bytes of a line whose newline has not arrived yet. */
  #hold(view: Buffer, i: number, n: number): void {
    if (this.#skipping) return;
    const rest = n - i;
    if (this.#carryLen + rest > this.#max + 1) {
      this.#onOverflow(this.#lineStart);
      this.#skipping = true;
      this.#carryLen = 0;
      return;
    }
    view.copy(this.#carry, this.#carryLen, i, n);
    this.#carryLen += rest;
  }

  /** `view[i, nl)` ends the current line; `end` is the offset after its newline. */
  #finishLine(view: Buffer, i: number, nl: number, end: number): void {
    let skipped = false;
    let delivered = false;
    if (this.#skipping) {
      this.#skipping = false;
    } else if (this.#carryLen === 0) {
      let e = nl;
      if (e > i && view[e - 1] === CR) e--;
      const len = e - i;
      if (len > this.#max) this.#onOverflow(this.#lineStart);
      else if (len > 0) {
        if (this.#skip?.(view, i, e)) skipped = true;
        else {
          delivered = true;
          this.#onLine(view.toString("utf8", i, e), end);
        }
      }
    } else {
      const total = this.#carryLen + (nl - i);
      if (total > this.#max + 1) {
        this.#onOverflow(this.#lineStart);
      } else {
        view.copy(this.#carry, this.#carryLen, i, nl);
        let e = total;
        if (this.#carry[e - 1] === CR) e--;
        if (e > this.#max) this.#onOverflow(this.#lineStart);
        else if (e > 0) {
          delivered = true;
          this.#onLine(this.#carry.toString("utf8", 0, e), end);
        }
      }
    }
    // A delivered line carries its own position, which covers every line before it. After a
    // skipped line, lines that yield no record (empty, over-long) move the pending position on.
    if (skipped) {
      this.#skipped++;
      this.#skippedEnd = end;
    } else if (delivered) this.#skippedEnd = -1;
    else if (this.#skippedEnd >= 0) this.#skippedEnd = end;
    this.#carryLen = 0;
    this.#lineStart = end;
  }
}
