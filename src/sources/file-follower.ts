/**
 * Follows one path: reads appended lines, survives rotation, and labels every line with its
 * resume position. Wake-ups (inotify, the poll timer) only say "look again"; every decision is
 * taken from `stat`/`fstat`, so a missed or spurious event costs latency, never a line.
 *
 * Rotation rules:
 * - rename-and-create: the path names a new inode. The old file is read to its end, its
 *   unterminated last line (if any) is delivered, and the next file is read from offset 0. The
 *   switch waits until the new file has data: until then the writer may still be writing the
 *   old one (between logrotate's rename and the writer's reopen), and nothing is lost by waiting.
 *   When the path was rotated more than once between two looks, the files in between are found
 *   under their rotated names and read first, oldest first (see `findNext`).
 * - copytruncate: same inode, but the size fell below our read offset or the head changed.
 *   The unread rest is taken from the copy (`full.1`, found by its head hash) when there is one,
 *   then the file is read from 0. A file is always taken on with the head it was chosen by
 *   (read before its first line), so a copytruncate between choosing a file and reading it
 *   still finds the copy; a file chosen while empty is chosen again once it has data, which
 *   finds a whole generation copied away in between. Lines written between logrotate's copy
 *   and its truncate exist in neither file, and neither does a generation written, copied and
 *   truncated before the tail ever looked at the path: both losses are inherent to copytruncate.
 * - missing: the path is waited for; a file that appears later is read from 0.
 *
 * Only siblings named like rotated copies (`full.1`, `full-20240514`) are ever considered, never
 * compressed ones, and only in the same directory (logrotate's `olddir` is not followed).
 */
import type { BigIntStats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import type { Logger } from "../core/supervisor.js";
import {
  findNext,
  findPredecessor,
  type Head,
  hashHead,
  headMatches,
  isMissing,
  readHead,
  statOrNull,
} from "./file-identity.js";
import { LineSplitter, type SkipLine } from "./line-splitter.js";
import { type FilePosition, filePositionPrefix, HEAD_BYTES, type OffsetStore } from "./offsets.js";
import type { Emit, RawRecord } from "./types.js";

export interface FollowerOptions {
  /** Absolute path. */
  readonly path: string;
  /** Offset-store key and `RawRecord.source`: `file:<path>`. */
  readonly key: string;
  readonly format: RawRecord["format"];
  readonly maxLineBytes: number;
  readonly chunkBytes: number;
  /** Read size while catching up (a read filled `chunkBytes`). */
  readonly backlogChunkBytes: number;
  readonly offsets: OffsetStore;
  /** Where the first open starts when no position is stored; later opens start at 0. */
  readonly initial: "start" | "end";
  readonly emit: Emit;
  /** Lines this says yes to (on their raw bytes) are not decoded nor emitted, only counted. */
  readonly skipLine?: SkipLine;
  readonly logger: Logger;
  readonly now: () => number;
  readonly signal: AbortSignal;
  /** Any error while following; the file source fails its run with it. */
  readonly onError: (err: unknown) => void;
  /**
   * A file this follower finished with (rotated away), by `dev:ino` and head, so that a glob
   * does not pick it up again under its new name.
   */
  readonly onRetire?: (inode: string, head: Head) => void;
}

interface OpenFile {
  readonly fh: FileHandle;
  readonly dev: bigint;
  readonly ino: bigint;
  /**
   * The first bytes of the file as they were read, in the same reads that delivered the lines,
   * so the head (and every position) describes exactly the content the lines came from.
   */
  readonly headBuf: Buffer;
  head: Head;
  prefix: string;
  readonly splitter: LineSplitter;
  /**
   * Set when this file was chosen as the successor of a finished one while it was still empty:
   * the successor search's argument, to search again once the file has data. An empty file
   * has no head to tell its content apart, so a whole generation written, copied and truncated
   * before our first read would otherwise go unnoticed (its copy is found by this search).
   */
  rechoose: { mtimeNs: bigint; head: Head } | null;
}

/** `#readToEof`'s answer for a file chosen while empty that has data now. */
const RECHOOSE = "rechoose";

export class FileFollower {
  readonly path: string;
  readonly #o: FollowerOptions;
  readonly #buf: Buffer;
  /**
   * Backlog reads: once a read fills `#buf`, reads use this larger buffer until one comes back
   * short. A burst is then read in a few large reads, while single appended lines keep small
   * reads (1 MiB reads for every line made the latency tail several times longer).
   */
  #big: Buffer | null = null;
  #backlog = false;
  readonly #scratch = Buffer.allocUnsafe(HEAD_BYTES);
  #cur: OpenFile | null = null;
  /** Every file finished in this run (dev:ino → head): never read twice, never a successor. */
  readonly #retired = new Map<string, Head>();
  #firstOpen = true;
  #again = false;
  #running = false;
  #busy: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: FollowerOptions) {
    this.#o = opts;
    this.path = opts.path;
    this.#buf = Buffer.allocUnsafe(opts.chunkBytes);
  }

  /** Look at the file again soon. Calls made while a drain runs fold into one more drain. */
  wake(): void {
    if (this.#closed) return;
    this.#again = true;
    if (this.#running) return;
    this.#running = true;
    this.#busy = this.#loop();
  }

  /** dev:ino of the file being read. */
  currentInode(): string | null {
    const c = this.#cur;
    return c ? `${c.dev}:${c.ino}` : null;
  }

  status(): string {
    const c = this.#cur;
    return c ? `${this.path}@${c.splitter.lineStart}` : `${this.path} (waiting)`;
  }

  /** Wait for the drain in progress, then release the file. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#busy;
    const c = this.#cur;
    this.#cur = null;
    await c?.fh.close();
  }

  async #loop(): Promise<void> {
    try {
      while (this.#again && !this.#closed && !this.#o.signal.aborted) {
        this.#again = false;
        await this.#drain();
      }
    } catch (e) {
      this.#o.onError(e);
    } finally {
      this.#running = false;
    }
  }

  async #drain(): Promise<void> {
    if (!this.#cur) await this.#openFresh();
    // Each pass either returns or moves to another file; the bound is a guard against a path
    // that flips between files faster than we can read them.
    for (let pass = 0; pass < 8 && this.#cur; pass++) {
      if (this.#o.signal.aborted) return;
      const c = this.#cur;
      const st = await c.fh.stat({ bigint: true });
      const read =
        st.size >= BigInt(c.splitter.readPos) &&
        (await headMatches(c.fh, c.head, this.#scratch)) &&
        (await this.#readToEof(c));
      if (read === RECHOOSE) {
        await this.#rechoose(c);
        continue;
      }
      if (!read) {
        await this.#truncated(c);
        continue;
      }
      if (this.#o.signal.aborted) return;
      const ps = await statOrNull(this.path);
      if (ps && ps.dev === c.dev && ps.ino === c.ino) return;
      const { nlink } = await c.fh.stat({ bigint: true });
      if (!ps) {
        // Renamed away and not (yet) recreated: keep reading it. Deleted: it is finished.
        if (nlink === 0n) await this.#finish(c, "deleted");
        return;
      }
      let next: Awaited<ReturnType<typeof findNext>> = null;
      if (ps.size === 0n && nlink > 0n) {
        // The new file is still empty, so the writer may not have reopened yet: stay on the old
        // file, unless files were rotated in between, which proves the old one is finished.
        const { mtimeNs } = await c.fh.stat({ bigint: true });
        const skip = new Map([...this.#retired, [`${c.dev}:${c.ino}`, c.head]]);
        next = await findNext(this.path, { mtimeNs, head: c.head }, skip);
        if (!next || next.atPath) {
          await next?.fh.close();
          return;
        }
      }
      const done = await this.#finish(c, "rotated");
      if (!done || this.#o.signal.aborted || this.#closed) {
        await next?.fh.close();
        return;
      }
      next ??= await findNext(this.path, done, this.#retired);
      if (!next) return;
      await this.#adoptNext(next, done);
    }
  }

  /** Start on a file `findNext` chose as the successor of `after`, with the head it chose by. */
  async #adoptNext(
    next: NonNullable<Awaited<ReturnType<typeof findNext>>>,
    after: OpenFile["rechoose"],
  ): Promise<void> {
    if (!next.atPath) {
      this.#o.logger.info({ file: this.path, from: next.name }, "reading a file that was rotated in between");
    }
    this.#o.logger.debug(
      { file: this.path, from: next.name, inode: `${next.st.dev}:${next.st.ino}`, headBytes: next.head.length },
      "next file chosen",
    );
    const c = await this.#adopt(next.fh, next.st, 0, false, 0, next.head);
    c.rechoose = next.head.length === 0 ? after : null;
  }

  /**
   * The file `c` was chosen while empty and now has data (none of it read yet): choose again, as
   * if it had had this data when it was chosen. Usually the answer is the same file, now with a
   * head; a generation copied and truncated away in between is found under its rotated name and
   * read first, and `c`'s file is found again after it.
   */
  async #rechoose(c: OpenFile): Promise<void> {
    const after = c.rechoose;
    if (after === null) return;
    const next = await findNext(this.path, after, this.#retired);
    if (!next) {
      // The path is gone and nothing was rotated in between: keep reading the file we hold.
      c.rechoose = null;
      return;
    }
    this.#cur = null;
    await c.fh.close();
    await this.#adoptNext(next, after);
  }

  /**
   * Read and deliver everything up to the end of the file. Returns false, without delivering the
   * last chunk, when the file no longer starts with its head: it was truncated and rewritten,
   * so that chunk may be new content found at an old offset. Checking the head after the read
   * is what makes this sound: a rewrite before the read shows in the head, one after it does
   * not affect the bytes already read. Returns RECHOOSE, delivering nothing, when the file was
   * chosen while empty and has data now: it is chosen again first (see `#rechoose`).
   */
  async #readToEof(c: OpenFile): Promise<boolean | typeof RECHOOSE> {
    for (;;) {
      if (this.#o.signal.aborted || this.#closed) return true;
      const at = c.splitter.readPos;
      if (this.#backlog && this.#big === null) this.#big = Buffer.allocUnsafe(this.#o.backlogChunkBytes);
      const buf = this.#backlog && this.#big !== null ? this.#big : this.#buf;
      const { bytesRead } = await c.fh.read(buf, 0, buf.length, at);
      this.#backlog = bytesRead === buf.length && this.#o.backlogChunkBytes > this.#buf.length;
      if (bytesRead === 0) return true;
      if (c.rechoose !== null) return RECHOOSE;
      if (!(await headMatches(c.fh, c.head, this.#scratch))) return false;
      const known = c.head.len;
      if (known < HEAD_BYTES && at <= known && at + bytesRead > known) {
        // The head grows from the bytes just read, past the part already known.
        const len = known + buf.copy(c.headBuf, known, known - at, Math.min(bytesRead, HEAD_BYTES - at));
        this.#setHead(c, { len, hash: hashHead(c.headBuf, len) });
      }
      c.splitter.push(buf, 0, bytesRead);
    }
  }

  /**
   * Deliver the rest of a file that will not grow any more, and let it go. Returns what a
   * successor search needs, or null when interrupted by a stop or when the file must be chosen
   * again first (the next drain does that).
   */
  async #finish(c: OpenFile, why: string): Promise<{ mtimeNs: bigint; head: Head } | null> {
    if ((await this.#readToEof(c)) === RECHOOSE) {
      this.#again = true; // not finished: the next drain chooses again, then reads
      return null;
    }
    if (this.#o.signal.aborted || this.#closed) return null;
    c.splitter.flush();
    const { mtimeNs, nlink } = await c.fh.stat({ bigint: true });
    this.#cur = null;
    await c.fh.close();
    const inode = `${c.dev}:${c.ino}`;
    // A deleted file can never be seen again, but its inode may soon belong to a new file.
    if (nlink > 0n) {
      this.#retired.set(inode, c.head);
      this.#o.onRetire?.(inode, c.head);
    }
    this.#o.logger.info({ file: this.path, offset: c.splitter.lineStart }, `log file ${why}; finished the old file`);
    return { mtimeNs, head: c.head };
  }

  async #truncated(c: OpenFile): Promise<void> {
    const committed = c.splitter.lineStart;
    const pos = this.#position(c, committed);
    // Searched whenever the head is known, also at offset 0: a file chosen (with its head) but
    // copied and truncated before its first read still has all of its lines in the copy.
    const copy = pos.headLen > 0 ? await findPredecessor(this.path, pos, c.ino) : null;
    if (copy) {
      this.#o.logger.warn(
        { file: this.path, copy: copy.name, offset: committed },
        "log file truncated (copytruncate); reading the rest from its copy",
      );
      this.#cur = null;
      await c.fh.close();
      await this.#adopt(copy.fh, copy.st, committed, false, pos.headLen);
      return;
    }
    this.#o.logger.warn({ file: this.path, offset: committed }, "log file truncated; reading it from the start");
    c.splitter.reset(0);
    // The new content's head, taken now: a second truncation before the next read then shows.
    const len = (await readHead(c.fh, HEAD_BYTES, c.headBuf)).length;
    this.#setHead(c, { len, hash: hashHead(c.headBuf, len) });
  }

  /** The first open consults the offset store; later opens are of a new file, read from 0. */
  async #openFresh(): Promise<void> {
    const first = this.#firstOpen;
    this.#firstOpen = false;
    const stored = first ? this.#o.offsets.get(this.#o.key) : undefined;
    if (stored?.kind === "file") {
      await this.#resume(stored);
      return;
    }
    const opened = await this.#openPath(first && this.#o.initial === "end" ? "end" : 0, true);
    if (!opened && first) this.#o.logger.info({ file: this.path }, "log file missing; waiting for it");
  }

  async #resume(stored: FilePosition): Promise<void> {
    const ps = await statOrNull(this.path);
    // The inode alone: some filesystems (overlayfs, btrfs, NFS) report another st_dev after a
    // reboot or remount. The head check below still guards against a reused inode.
    if (ps && ps.ino.toString() === stored.ino && ps.size >= BigInt(stored.offset)) {
      const fh = await openOrNull(this.path);
      if (fh) {
        const st = await fh.stat({ bigint: true });
        const head = { len: stored.headLen, hash: stored.headHash };
        if (st.ino === ps.ino && st.size >= BigInt(stored.offset) && (await headMatches(fh, head))) {
          const c = await this.#adopt(fh, st, stored.offset, false, stored.headLen);
          // Re-read for the new head: a truncation in between would show here.
          if (c.head.len >= head.len && hashHead(c.headBuf, head.len) === head.hash) return;
          this.#cur = null;
        }
        await fh.close();
      }
    }
    // No inode is excluded here: `ps` may be stale (a rotation between the stat and the open
    // above), and the file now at the path is never a candidate anyway (siblings only).
    const pred = await findPredecessor(this.path, stored);
    if (pred) {
      this.#o.logger.info(
        { file: this.path, from: pred.name, offset: stored.offset },
        "log file was rotated while stopped; reading the rest of the old file first",
      );
      await this.#adopt(pred.fh, pred.st, stored.offset, false, stored.headLen);
      return;
    }
    const opened = await this.#openPath(0, false);
    if (opened) {
      this.#o.logger.info({ file: this.path }, "stored position belongs to another file; reading from the start");
    }
  }

  /** Open the path at `at`; false when it does not exist. */
  async #openPath(at: number | "end", storeInitial: boolean): Promise<boolean> {
    const fh = await openOrNull(this.path);
    if (!fh) return false;
    const st = await fh.stat({ bigint: true });
    if (at === "end") {
      const [offset, skipping] = await this.#endOffset(fh, Number(st.size));
      await this.#adopt(fh, st, offset, skipping);
    } else {
      await this.#adopt(fh, st, at, false);
    }
    const c = this.#cur;
    if (storeInitial && c && this.#o.offsets.get(this.#o.key) === undefined) {
      this.#o.offsets.set(this.#o.key, this.#position(c, c.splitter.lineStart));
    }
    return true;
  }

  /**
   * Start "at the end" at the beginning of the last, unterminated line, so that a line being
   * written right now is delivered whole once its newline arrives.
   */
  async #endOffset(fh: FileHandle, size: number): Promise<[number, boolean]> {
    const window = Math.min(size, this.#o.maxLineBytes + 1);
    if (window === 0) return [size, false];
    const buf = Buffer.allocUnsafe(window);
    let got = 0;
    while (got < window) {
      const { bytesRead } = await fh.read(buf, got, window - got, size - window + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const nl = buf.subarray(0, got).lastIndexOf(10);
    if (nl !== -1) return [size - window + nl + 1, false];
    return window === size ? [0, false] : [size, true];
  }

  /**
   * Make `fh` the file being read, from `offset`. Its head is `known` when given (the bytes the
   * file was chosen by); else it is read now: over the bytes before `offset` (and over
   * `verified` bytes known to belong to this content), or over the whole head when starting at
   * 0. It grows later from the reads themselves.
   */
  async #adopt(
    fh: FileHandle,
    st: BigIntStats,
    offset: number,
    skipping: boolean,
    verified = 0,
    known?: Buffer,
  ): Promise<OpenFile> {
    const headBuf = Buffer.allocUnsafe(HEAD_BYTES);
    let len: number;
    if (known) {
      len = known.copy(headBuf, 0, 0, Math.min(known.length, HEAD_BYTES));
    } else {
      const want = offset === 0 ? HEAD_BYTES : Math.min(HEAD_BYTES, Math.max(offset, verified));
      len = (await readHead(fh, want, headBuf)).length;
    }
    const c: OpenFile = {
      fh,
      dev: st.dev,
      ino: st.ino,
      headBuf,
      head: { len, hash: hashHead(headBuf, len) },
      prefix: "",
      rechoose: null,
      splitter: new LineSplitter({
        maxLineBytes: this.#o.maxLineBytes,
        onLine: (text, end) =>
          this.#o.emit({
            text,
            source: this.#o.key,
            format: this.#o.format,
            received: this.#o.now(),
            position: c.prefix + end,
          }),
        ...(this.#o.skipLine && {
          skip: this.#o.skipLine,
          onSkipped: (count: number, end: number) =>
            this.#o.emit({
              text: "",
              skipped: count,
              source: this.#o.key,
              format: this.#o.format,
              received: this.#o.now(),
              ...(end >= 0 && { position: c.prefix + end }),
            }),
        }),
        onOverflow: (start) =>
          this.#o.logger.warn(
            { file: this.path, offset: start, maxLineBytes: this.#o.maxLineBytes },
            "line longer than maxLineBytes skipped",
          ),
      }),
    };
    c.splitter.reset(offset, skipping);
    this.#setHead(c, c.head);
    this.#cur = c;
    return c;
  }

  #setHead(c: OpenFile, head: Head): void {
    c.head = head;
    c.prefix = filePositionPrefix(c.dev.toString(), c.ino.toString(), head.len, head.hash);
  }

  #position(c: OpenFile, offset: number): FilePosition {
    return {
      kind: "file",
      dev: c.dev.toString(),
      ino: c.ino.toString(),
      offset,
      headLen: c.head.len,
      headHash: c.head.hash,
    };
  }
}

async function openOrNull(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, "r");
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}
