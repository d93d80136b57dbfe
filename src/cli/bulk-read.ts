/**
 * Fast bulk reading of log files for `sipwarden test` and replay. Ordinary lines are skipped
 * without being decoded: one regex made of the parsers' needles runs over a latin1 view of a
 * large chunk, and only the lines it hits are decoded (as UTF-8) and parsed. Newlines are
 * counted with Buffer.indexOf, which is memchr-fast.
 */
import { isAscii } from "node:buffer";
import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { pipeline, Readable, type Transform } from "node:stream";
import * as zlib from "node:zlib";
import { SipwardenError } from "../core/errors.js";
import { type LineRouter, ROUTE_DIRECT, ROUTE_SKIP } from "../parsers/types.js";

/**
 * Read size: small enough that a chunk is still in the CPU cache when its lines are scanned and
 * parsed (4 MiB reads made a cold `sipwarden test` about 3 % slower on the benchmark log).
 */
const CHUNK = 256 << 10;

/**
 * Buffer's own per-encoding decoders (what `toString(encoding, s, e)` calls after resolving the
 * encoding name): undocumented but present in every Node release; used when they exist, since
 * the wrapper costs as much as the decoding of a short line.
 */
interface SliceMethods {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}
const proto = Buffer.prototype as unknown as Partial<SliceMethods>;
const DIRECT_SLICE = typeof proto.latin1Slice === "function" && typeof proto.utf8Slice === "function";

/** buf[s, e) as text: latin1 when the caller knows the bytes are ASCII (same string, cheaper). */
function decode(buf: Buffer, s: number, e: number, ascii: boolean): string {
  if (DIRECT_SLICE) {
    const b = buf as unknown as SliceMethods;
    return ascii ? b.latin1Slice(s, e) : b.utf8Slice(s, e);
  }
  return buf.toString(ascii ? "latin1" : "utf8", s, e);
}

/**
 * Called for each candidate line (or every line when no prefilter applies). `lineNo` is 1-based;
 * `direct` is set for lines the router sent to its own parser (no needle test was made).
 */
export type LineSink = (line: string, lineNo: number, direct: boolean) => void;

export interface ScanOptions {
  /** Literal needles; a line with none of them is counted and skipped. Empty: every line is delivered. */
  needles: readonly string[];
  /**
   * A byte-level router: SKIP lines are counted only, DIRECT lines are delivered with `direct`
   * set and without the needle test, the others need a needle.
   */
  route?: LineRouter;
  /** Lines longer than this are counted in `skippedLong` and not delivered. */
  maxLineBytes?: number;
}

export interface ScanStats {
  lines: number;
  bytes: number;
  candidates: number;
  skippedLong: number;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Incremental scanner: push() buffers of any size, then end(). Lines are split on `\n`; a
 * trailing `\r` is dropped.
 */
export class ChunkScanner {
  readonly stats: ScanStats = { lines: 0, bytes: 0, candidates: 0, skippedLong: 0 };
  private readonly re: RegExp | null;
  private readonly route: LineRouter | null;
  private readonly maxLine: number;
  private carry: Buffer = Buffer.alloc(0);

  constructor(
    opts: ScanOptions,
    private readonly sink: LineSink,
  ) {
    const needles = opts.needles.filter((n) => n.length > 0);
    // Needles must be ASCII so that latin1 positions are byte positions.
    const ascii = needles.every((n) => /^[\x20-\x7e]+$/.test(n));
    this.re = needles.length > 0 && ascii ? new RegExp(needles.map(escapeRe).join("|"), "g") : null;
    this.maxLine = opts.maxLineBytes ?? 65536;
    this.route = opts.route ?? null;
  }

  /** Feeds any chunk of bytes (copies only the unfinished tail). */
  push(chunk: Buffer): void {
    this.stats.bytes += chunk.length;
    let data = chunk;
    if (this.dropUntilNewline) {
      // Still inside an over-long line: discard until its newline, which ends it (and counts it).
      const nl = data.indexOf(10);
      if (nl < 0) return;
      this.dropUntilNewline = false;
      this.stats.lines++;
      data = data.subarray(nl + 1);
    }
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, data]) : data;
    const stop = buf.lastIndexOf(10) + 1;
    if (stop > 0) this.pushLines(buf, stop);
    this.carry = stop < buf.length ? Buffer.from(buf.subarray(stop)) : Buffer.alloc(0);
    if (this.carry.length > this.maxLine) {
      // A line longer than the limit with no newline in sight: drop it now, resume after its newline.
      this.stats.skippedLong++;
      this.carry = Buffer.alloc(0);
      this.dropUntilNewline = true;
    }
  }

  private dropUntilNewline = false;

  /** Flushes an unterminated last line. */
  end(): ScanStats {
    if (this.dropUntilNewline) {
      this.dropUntilNewline = false;
      this.stats.lines++;
    }
    if (this.carry.length > 0) {
      const last = Buffer.concat([this.carry, Buffer.from("\n")]);
      this.carry = Buffer.alloc(0);
      this.pushLines(last, last.length);
    }
    return this.stats;
  }

  /** Handles buf[0, stop), which must end with a newline. Does not count bytes. */
  pushLines(buf: Buffer, stop: number): void {
    let start = 0;
    const st = this.stats;
    if (this.dropUntilNewline) {
      start = buf.indexOf(10) + 1;
      this.dropUntilNewline = false;
      st.lines++;
    }
    const base = st.lines;
    if (this.re === null) {
      let i = start;
      let n = base;
      while (i < stop) {
        const nl = buf.indexOf(10, i);
        n++;
        this.deliver(buf, i, nl, n);
        i = nl + 1;
      }
      st.lines = n;
      return;
    }
    if (this.route !== null) {
      st.lines = this.pushRouted(buf, start, stop, base, this.route, this.re);
      return;
    }
    const text = buf.toString("latin1", start, stop);
    const re = this.re;
    re.lastIndex = 0;
    let counted = start; // newlines before this byte offset are already counted
    let n = base;
    let m: RegExpExecArray | null = re.exec(text);
    while (m !== null) {
      const hit = m.index + start;
      const lineStart = buf.lastIndexOf(10, hit) + 1;
      while (counted < lineStart) {
        const nl = buf.indexOf(10, counted);
        n++;
        counted = nl + 1;
      }
      const lineEnd = buf.indexOf(10, hit);
      n++;
      counted = lineEnd + 1;
      this.deliver(buf, lineStart, lineEnd, n);
      re.lastIndex = counted - start;
      m = counted < stop ? re.exec(text) : null;
    }
    while (counted < stop) {
      const nl = buf.indexOf(10, counted);
      n++;
      counted = nl + 1;
    }
    st.lines = n;
  }

  /**
   * Line by line: the router first; a line it does not skip is decoded once, and unless it is
   * DIRECT the needle regex runs on that string (no whole-chunk conversion, no second decode).
   */
  private pushRouted(buf: Buffer, start: number, stop: number, base: number, route: LineRouter, re: RegExp): number {
    const st = this.stats;
    const max = this.maxLine;
    const sink = this.sink;
    // Pure ASCII (nearly every log): latin1 decoding gives the same string as UTF-8, cheaper.
    const ascii = isAscii(buf.subarray(start, stop));
    let n = base;
    let i = start;
    while (i < stop) {
      const nl = buf.indexOf(10, i);
      n++;
      const r = route(buf, i, nl);
      if (r !== ROUTE_SKIP) {
        if (nl - i > max) st.skippedLong++;
        else {
          const e = nl > i && buf[nl - 1] === 13 ? nl - 1 : nl;
          const line = decode(buf, i, e, ascii);
          if (r === ROUTE_DIRECT) {
            st.candidates++;
            sink(line, n, true);
          } else {
            re.lastIndex = 0;
            if (re.test(line)) {
              st.candidates++;
              sink(line, n, false);
            }
          }
        }
      }
      i = nl + 1;
    }
    return n;
  }

  private deliver(buf: Buffer, s: number, e: number, lineNo: number): void {
    if (e - s > this.maxLine) {
      this.stats.skippedLong++;
      return;
    }
    const end = e > s && buf[e - 1] === 13 ? e - 1 : e;
    this.stats.candidates++;
    this.sink(buf.toString("utf8", s, end), lineNo, false);
  }
}

function describeIoError(cause: unknown): string {
  const e = cause as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    ENOENT: "no such file",
    EACCES: "permission denied",
    EISDIR: "is a directory",
    EPERM: "operation not permitted",
  };
  return (e.code && why[e.code]) ?? e.message ?? String(cause);
}

/**
 * A read that failed part of the way through: the lines before the failure were delivered, and
 * `stats` counts them, so that a report can still show them next to the error.
 */
export class PartialReadError extends SipwardenError {
  constructor(
    message: string,
    file: string,
    readonly stats: ScanStats,
    cause: unknown,
  ) {
    super("INPUT_READ", message, { file, cause });
  }
}

/**
 * What an input's first bytes say it is. Rotated logs are often compressed (logrotate's
 * `compress`: gzip by default, or xz, zstd, bzip2 via `compresscmd`), and a journald file is
 * binary: read as text, any of them would give a silent, empty report.
 */
export type InputKind = "text" | "gzip" | "zstd" | "xz" | "bzip2" | "lz4" | "compress" | "journal";

/** Bytes needed to tell the kinds apart. */
const SNIFF_BYTES = 10;

function startsWithBytes(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
  if (head.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[at + i] !== bytes[i]) return false;
  return true;
}

/** The kind of an input from its first bytes (at least SNIFF_BYTES of them, unless it is shorter). */
export function sniffInput(head: Uint8Array): InputKind {
  if (startsWithBytes(head, [0x1f, 0x8b])) return "gzip";
  if (startsWithBytes(head, [0x28, 0xb5, 0x2f, 0xfd])) return "zstd";
  if (startsWithBytes(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return "xz";
  if (startsWithBytes(head, [0x04, 0x22, 0x4d, 0x18])) return "lz4";
  if (startsWithBytes(head, [0x1f, 0x9d])) return "compress";
  // "LPKSHHRH": systemd's journal file header.
  if (startsWithBytes(head, [0x4c, 0x50, 0x4b, 0x53, 0x48, 0x48, 0x52, 0x48])) return "journal";
  // "BZh" and a block size digit, then a block ("1AY&SY") or the end-of-stream marker (empty input).
  if (
    startsWithBytes(head, [0x42, 0x5a, 0x68]) &&
    head[3]! >= 0x31 &&
    head[3]! <= 0x39 &&
    (startsWithBytes(head, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 4) ||
      startsWithBytes(head, [0x17, 0x72, 0x45, 0x38, 0x50, 0x90], 4))
  ) {
    return "bzip2";
  }
  return "text";
}

type ZstdFactory = (opts: { chunkSize: number }) => Transform;
/** zstd decompression is in node:zlib from Node 22.15 / 23.8 on. */
const createZstdDecompress = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;

/** A decompressing stream for `kind`, or null when this Node.js cannot decompress it. */
function decompressor(kind: InputKind): Transform | null {
  // Output in CHUNK-sized pieces, not zlib's default 16 KiB: fewer, larger pushes into the scanner.
  if (kind === "gzip") return zlib.createGunzip({ chunkSize: CHUNK });
  if (kind === "zstd" && createZstdDecompress) return createZstdDecompress({ chunkSize: CHUNK });
  return null;
}

/** The command that turns such an input into text, for the error message. */
const TO_TEXT: Record<Exclude<InputKind, "text">, (file: string) => string> = {
  gzip: (f) => `zcat ${f}`,
  zstd: (f) => `zstdcat ${f}`,
  xz: (f) => `xzcat ${f}`,
  bzip2: (f) => `bzcat ${f}`,
  lz4: (f) => `lz4cat ${f}`,
  compress: (f) => `zcat ${f}`,
  journal: (f) => `journalctl --file ${f} -o short-iso`,
};

function shellQuote(s: string): string {
  return /^[\w./@%+=:,-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

function unreadableKind(kind: Exclude<InputKind, "text">, path: string): SipwardenError {
  const what =
    kind === "journal"
      ? "a systemd journal file, not a text log"
      : kind === "zstd"
        ? `compressed with zstd, which Node.js ${process.versions.node} cannot decompress (22.15 and later can)`
        : `compressed with ${kind === "compress" ? "compress (.Z)" : kind}`;
  const how =
    path === "-"
      ? `${TO_TEXT[kind]("FILE")} | sipwarden test -`
      : `${TO_TEXT[kind](shellQuote(path))} | sipwarden test -`;
  return new SipwardenError("INPUT_READ", `${what}; read it through a pipe: ${how}`, { file: path });
}

/**
 * Feeds `source` into the scanner, decompressed when its first bytes say it is gzip (or zstd
 * where Node.js has it). Used for standard input and for compressed files; plain files take the
 * synchronous path in scanPath.
 */
async function scanChunks(source: AsyncIterable<Buffer>, scanner: ChunkScanner, path: string): Promise<void> {
  const it = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let got = 0;
  let done = false;
  while (got < SNIFF_BYTES) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(r.value);
    got += r.value.length;
  }
  const first = Buffer.concat(head);
  async function* all(): AsyncGenerator<Buffer> {
    yield first;
    while (!done) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  const kind = sniffInput(first);
  if (kind === "text") {
    for await (const chunk of all()) scanner.push(chunk);
    return;
  }
  const d = decompressor(kind);
  if (d === null) {
    // Stop reading: for a file this destroys the stream, which closes its descriptor.
    await it.return?.();
    throw unreadableKind(kind, path);
  }
  const out = pipeline(Readable.from(all(), { objectMode: false }), d, () => {});
  try {
    for await (const chunk of out) scanner.push(chunk as Buffer);
  } catch (cause) {
    // A system call's error (EIO, …) is the file's; anything else is zlib's verdict on the data.
    const errno = /^E[A-Z]+$/.test(String((cause as NodeJS.ErrnoException)?.code));
    const why = errno
      ? `cannot read: ${describeIoError(cause)}`
      : `${kind} data is damaged or cut short: ${(cause as Error)?.message ?? String(cause)}`;
    throw new PartialReadError(`${why} (after ${scanner.stats.lines} lines)`, path, scanner.stats, cause);
  }
}

function readError(path: string, cause: unknown, stats: ScanStats): SipwardenError {
  const message = `cannot read: ${describeIoError(cause)}`;
  return stats.lines > 0
    ? new PartialReadError(message, path, stats, cause)
    : new SipwardenError("INPUT_READ", message, { file: path, cause });
}

/**
 * Scans a file (or `-` for stdin) to the end. gzip input (a rotated `full.1.gz`) is decompressed
 * on the fly; other compressed or binary inputs are refused with the command that reads them.
 * A failure part of the way through is a PartialReadError carrying what was read.
 */
export async function scanPath(path: string, opts: ScanOptions, sink: LineSink): Promise<ScanStats> {
  const scanner = new ChunkScanner(opts, sink);
  if (path === "-") {
    await scanChunks(process.stdin as AsyncIterable<Buffer>, scanner, path);
    return scanner.end();
  }
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (cause) {
    throw readError(path, cause, scanner.stats);
  }
  let kind: InputKind;
  try {
    // pread at offset 0: the file position stays at the start for the reads below.
    const head = Buffer.alloc(SNIFF_BYTES);
    kind = sniffInput(head.subarray(0, readSync(fd, head, 0, SNIFF_BYTES, 0)));
  } catch (cause) {
    closeSync(fd);
    throw readError(path, cause, scanner.stats);
  }
  if (kind !== "text") {
    // The stream takes the descriptor over and closes it.
    await scanChunks(createReadStream(path, { fd, highWaterMark: CHUNK }), scanner, path);
    return scanner.end();
  }
  try {
    // Read straight into one buffer and move only the unfinished tail: no per-chunk concat.
    const buf = Buffer.allocUnsafe(CHUNK * 2);
    let carry = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, carry, buf.length - carry, null);
      } catch (cause) {
        throw readError(path, cause, scanner.stats);
      }
      if (n === 0) break;
      scanner.stats.bytes += n;
      const end = carry + n;
      const stop = buf.lastIndexOf(10, end - 1) + 1;
      if (stop === 0) {
        carry = end;
        if (carry === buf.length) {
          scanner.push(Buffer.from(buf.subarray(0, carry)));
          scanner.stats.bytes -= carry;
          carry = 0;
        }
        continue;
      }
      scanner.pushLines(buf, stop);
      buf.copyWithin(0, stop, end);
      carry = end - stop;
    }
    if (carry > 0) {
      scanner.push(Buffer.from(buf.subarray(0, carry)));
      scanner.stats.bytes -= carry;
    }
  } finally {
    closeSync(fd);
  }
  return scanner.end();
}
