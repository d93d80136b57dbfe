/**
 * The file source: follows one or more paths or globs (`/var/log/asterisk/*.log`) and emits
 * every appended line once, surviving rotation and restarts.
 *
 * Wake-ups come from two places, on purpose:
 * - one `fs.watch` (inotify) per DIRECTORY: a directory watch reports writes to the files in it
 *   as well as renames and creations, so it sees both appends and rotation with one watch;
 * - a stat-polling timer (`pollMs`, 500 ms by default) that is always on. inotify is silent on
 *   NFS/FUSE/some overlay setups, a rotated file may move to another directory, and a watch can
 *   fail (inotify limits); the poll makes each of those cost latency instead of lines.
 * A wake-up only means "look again"; the followers decide everything from stat/fstat.
 *
 * Exactness ("no line lost, none counted twice") is a contract with the daemon: every record
 * carries `position` (the offset after its line plus the file's identity); the daemon commits it
 * with `acknowledge()` (offsets.ts) only after the record is fully processed, ideally in the same
 * transaction. On start the source resumes from the committed position; when that position's
 * file was rotated meanwhile, the rest of the old file is read first if it is still next to the
 * path under a rotated name (`full.1`, `full-20240514`; found by inode and head hash), then any
 * file rotated after it, then the current file. Rotation rules: file-follower.ts.
 *
 * Line rules: split on `\n` (CRLF accepted), decoded as UTF-8 per line (bad bytes become U+FFFD),
 * lines over `maxLineBytes` skipped with a warning, empty lines ignored, and a partial last line
 * held until its newline arrives, except when its file is finished by rotation or deletion:
 * then it is delivered as it is, since nobody will complete it.
 *
 * Start: with no stored position a file present at start is read from its end (`fromStart`
 * reads it whole); a file that appears later (after a missing path, a rotation or a new glob
 * match) is read from 0. A glob match present at start but unknown to the store counts as
 * present, so files created while the daemon was down are read from their end.
 */
import { type FSWatcher, watch } from "node:fs";
import { type FileHandle, open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { FileSourceConfig } from "../config/schema.js";
import { SipwardenError } from "../core/errors.js";
import { type Logger, NULL_LOGGER } from "../core/supervisor.js";
import { FileFollower } from "./file-follower.js";
import { type Head, headMatches, isMissing, statOrNull } from "./file-identity.js";
import { compilePattern, type PathPattern } from "./glob-watch.js";
import type { SkipLine } from "./line-splitter.js";
import { MemoryOffsetStore, type OffsetStore } from "./offsets.js";
import type { Emit, RawRecord, Source, SourceStatus } from "./types.js";

export interface FileTailOptions {
  /** Paths or globs; wildcards (`*`, `?`, `[...]`) only in the last component. */
  readonly paths: readonly string[];
  /** Source id; default `file:<paths joined by ",">`. */
  readonly id?: string;
  readonly format?: RawRecord["format"];
  /** With no stored position, read a file present at start from its beginning. */
  readonly fromStart?: boolean;
  readonly maxLineBytes?: number;
  /** Where committed positions are read from; in-memory when not given. */
  readonly offsets?: OffsetStore;
  /** Stat-polling period, the safety net under inotify. */
  readonly pollMs?: number;
  /** Use inotify (`fs.watch`) besides polling; false polls only. */
  readonly watch?: boolean;
  /** Read size; one buffer of this size is reused per followed file. */
  readonly chunkBytes?: number;
  /**
   * Lines this says yes to, on their raw bytes, are counted and not emitted (see
   * RawRecord.skipped). The daemon passes the parsers' byte-level router.
   */
  readonly skipLine?: SkipLine;
  readonly logger?: Logger;
  /** Clock for `RawRecord.received`. */
  readonly now?: () => number;
}

// 64 KiB reads, and 1 MiB reads while catching up: a burst of a million lines is read in ~140
// reads instead of ~2,000 (each read is followed by a check of the file's head).
const DEFAULTS = { maxLineBytes: 16_384, pollMs: 500, chunkBytes: 64 * 1024, backlogChunkBytes: 1024 * 1024 };

export class FileTail implements Source {
  readonly id: string;
  readonly #o: FileTailOptions;
  readonly #patterns: PathPattern[];
  readonly #offsets: OffsetStore;
  #run: TailRun | null = null;

  constructor(opts: FileTailOptions) {
    if (opts.paths.length === 0) {
      throw new SipwardenError("CONFIG_INVALID", "a file source needs at least one path", {
        path: "sources.files.path",
      });
    }
    this.#o = opts;
    this.#patterns = opts.paths.map(compilePattern);
    this.#offsets = opts.offsets ?? new MemoryOffsetStore();
    this.id = opts.id ?? `file:${this.#patterns.map((p) => p.text).join(",")}`;
  }

  async run(emit: Emit, signal: AbortSignal): Promise<void> {
    if (this.#run) throw new SipwardenError("SOURCE_FAILED", `${this.id} is already running`);
    const r = new TailRun(this.#o, this.#patterns, this.#offsets, emit, signal);
    this.#run = r;
    try {
      await r.run();
    } catch (e) {
      if (e instanceof SipwardenError) throw e;
      throw new SipwardenError("SOURCE_FAILED", `file source ${this.id} failed: ${(e as Error).message}`, { cause: e });
    } finally {
      this.#run = null;
    }
  }

  status(): SourceStatus {
    const r = this.#run;
    return { detail: r ? r.detail() : `${this.id} (stopped)` };
  }
}

/** Build a file source from one `sources.files[]` entry. */
export function fileTailFromConfig(
  cfg: FileSourceConfig,
  deps: { offsets: OffsetStore; logger?: Logger; pollMs?: number; skipLine?: SkipLine },
): FileTail {
  return new FileTail({
    paths: [cfg.path],
    format: cfg.format,
    fromStart: cfg.fromStart,
    maxLineBytes: cfg.maxLineBytes,
    offsets: deps.offsets,
    ...(deps.logger && { logger: deps.logger }),
    ...(deps.pollMs !== undefined && { pollMs: deps.pollMs }),
    ...(deps.skipLine && { skipLine: deps.skipLine }),
  });
}

/** Everything that lives for one `run`: followers, watches, the poll timer. */
class TailRun {
  readonly #o: FileTailOptions;
  readonly #patterns: PathPattern[];
  readonly #offsets: OffsetStore;
  readonly #emit: Emit;
  readonly #signal: AbortSignal;
  readonly #logger: Logger;
  readonly #followers = new Map<string, FileFollower>();
  readonly #watchers = new Map<string, FSWatcher | null>();
  /** Files finished by a rotation in this run: a glob must not pick them up under a new name. */
  readonly #retired = new Map<string, Head>();
  readonly #scanning = new Set<string>();
  #fail: (e: unknown) => void = () => {};
  #failed = false;

  constructor(o: FileTailOptions, patterns: PathPattern[], offsets: OffsetStore, emit: Emit, signal: AbortSignal) {
    this.#o = o;
    this.#patterns = patterns;
    this.#offsets = offsets;
    this.#emit = emit;
    this.#signal = signal;
    this.#logger = o.logger ?? NULL_LOGGER;
  }

  detail(): string {
    return [...this.#followers.values()].map((f) => f.status()).join(", ");
  }

  async run(): Promise<void> {
    if (this.#signal.aborted) return;
    const done = new Promise<void>((resolve, reject) => {
      this.#signal.addEventListener("abort", () => resolve(), { once: true });
      this.#fail = (e) => {
        if (this.#failed) return;
        this.#failed = true;
        reject(
          e instanceof SipwardenError
            ? e
            : new SipwardenError("SOURCE_FAILED", `file source failed: ${e}`, { cause: e }),
        );
      };
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const initial = this.#o.fromStart ? "start" : "end";
      for (const p of this.#patterns) {
        if (!p.isGlob) this.#follow(p.text, initial);
        else for (const name of await listDir(p.dir)) if (p.matches(name)) this.#follow(join(p.dir, name), initial);
      }
      for (const p of this.#patterns) this.#watchDir(p.dir);
      timer = setInterval(() => this.#tick(), this.#o.pollMs ?? DEFAULTS.pollMs);
      for (const f of this.#followers.values()) f.wake();
      await done;
    } finally {
      if (timer) clearInterval(timer);
      for (const w of this.#watchers.values()) w?.close();
      this.#watchers.clear();
      await Promise.all([...this.#followers.values()].map((f) => f.close()));
    }
  }

  #follow(path: string, initial: "start" | "end"): void {
    if (this.#followers.has(path)) return;
    const f = new FileFollower({
      path,
      key: `file:${path}`,
      format: this.#o.format ?? "auto",
      maxLineBytes: this.#o.maxLineBytes ?? DEFAULTS.maxLineBytes,
      chunkBytes: this.#o.chunkBytes ?? DEFAULTS.chunkBytes,
      // An explicit read size (tests use tiny ones) holds for backlogs too.
      backlogChunkBytes: this.#o.chunkBytes ?? DEFAULTS.backlogChunkBytes,
      offsets: this.#offsets,
      initial,
      emit: this.#emit,
      ...(this.#o.skipLine && { skipLine: this.#o.skipLine }),
      logger: this.#logger,
      now: this.#o.now ?? Date.now,
      signal: this.#signal,
      onError: (e) => this.#fail(e),
      onRetire: (inode, head) => this.#retired.set(inode, head),
    });
    this.#followers.set(path, f);
  }

  #watchDir(dir: string): void {
    if (this.#o.watch === false || this.#watchers.get(dir)) return;
    try {
      const w = watch(dir, { persistent: true }, (_event, name) => this.#onDirEvent(dir, name));
      w.on("error", () => {
        // Directory removed or the watch broke: polling carries on, the next tick retries.
        w.close();
        this.#watchers.set(dir, null);
      });
      this.#watchers.set(dir, w);
    } catch {
      this.#watchers.set(dir, null);
    }
  }

  #onDirEvent(dir: string, name: string | Buffer | null): void {
    if (this.#signal.aborted) return;
    const n = name?.toString();
    if (
      n &&
      this.#patterns.some((p) => p.isGlob && p.dir === dir && p.matches(n)) &&
      !this.#followers.has(join(dir, n))
    )
      this.#scan(dir);
    for (const f of this.#followers.values()) if (dirname(f.path) === dir) f.wake();
  }

  #tick(): void {
    if (this.#signal.aborted) return;
    for (const p of this.#patterns) {
      if (!this.#watchers.get(p.dir)) this.#watchDir(p.dir);
      if (p.isGlob) this.#scan(p.dir);
    }
    for (const f of this.#followers.values()) f.wake();
  }

  /** Pick up new glob matches in `dir`; files that show up while running are read from 0. */
  #scan(dir: string): void {
    if (this.#scanning.has(dir)) return;
    this.#scanning.add(dir);
    this.#scanDir(dir)
      .catch((e) => this.#fail(e))
      .finally(() => this.#scanning.delete(dir));
  }

  async #scanDir(dir: string): Promise<void> {
    const pats = this.#patterns.filter((p) => p.isGlob && p.dir === dir);
    for (const name of await listDir(dir)) {
      const path = join(dir, name);
      if (this.#followers.has(path) || !pats.some((p) => p.matches(name))) continue;
      if (await this.#isKnownFile(path)) continue;
      if (this.#signal.aborted) return;
      this.#logger.info({ file: path }, "new log file matches the pattern; following it");
      this.#follow(path, "start");
      this.#followers.get(path)?.wake();
    }
  }

  /** Whether `path` is a file we already read under another name (a rotated-away file). */
  async #isKnownFile(path: string): Promise<boolean> {
    const st = await statOrNull(path);
    if (!st?.isFile()) return true;
    const inode = `${st.dev}:${st.ino}`;
    for (const f of this.#followers.values()) if (f.currentInode() === inode) return true;
    const head = this.#retired.get(inode);
    if (!head) return false;
    // Same inode as a finished file: the same file only if its head is the same too (the inode
    // may have been reused by a new file after the old one was deleted).
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (e) {
      if (isMissing(e)) return true;
      throw e;
    }
    try {
      return await headMatches(fh, head);
    } finally {
      await fh.close();
    }
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
}
