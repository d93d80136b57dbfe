/**
 * The journald source: runs `journalctl --follow --output=json` and turns each entry into a
 * syslog-style line that the line parsers already understand (rsyslog's RSYSLOG_FileFormat):
 *
 *   2024-05-14T10:21:08.020117+00:00 sip1 kamailio[2146]: <MESSAGE>
 *
 * The time comes from the entry's `__REALTIME_TIMESTAMP`, never from the clock. Each entry's
 * `__CURSOR` is its resume position; the daemon commits it once the entry is processed, and the
 * next run passes it as `--after-cursor`. Without a stored cursor the first run starts at the end
 * (`--lines=0`). A multi-line MESSAGE gives one record per line and only the last carries the
 * cursor, so a crash in the middle of such an entry replays that entry.
 *
 * The source never retries: when journalctl exits or cannot start, `run` rejects and the
 * supervisor restarts it.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { SipwardenError } from "../core/errors.js";
import { type Logger, NULL_LOGGER } from "../core/supervisor.js";
import { LineSplitter } from "./line-splitter.js";
import { encodePosition, type OffsetStore } from "./offsets.js";
import type { Emit, RawRecord, Source, SourceStatus } from "./types.js";

export interface JournaldOptions {
  /** `--unit=`: a systemd unit such as `kamailio.service`. */
  readonly unit?: string;
  /** `--identifier=`: a syslog identifier such as `asterisk`. */
  readonly identifier?: string;
  readonly format?: RawRecord["format"];
  /** Source id and offset-store key; default `journald:<unit|identifier|all>`. */
  readonly id?: string;
  /** The journalctl binary. */
  readonly journalctl?: string;
  /** Read these journal files instead of the system journal (`--file=`). */
  readonly files?: readonly string[];
  /** Read the journal in this directory (`--directory=`). */
  readonly directory?: string;
  readonly offsets?: OffsetStore;
  readonly logger?: Logger;
  /** Clock for `RawRecord.received` only. */
  readonly now?: () => number;
  /** Host name for entries without `_HOSTNAME`. */
  readonly hostname?: string;
  /** Longest JSON line accepted from journalctl. */
  readonly maxLineBytes?: number;
}

/** The fields the line needs; journalctl always adds `__CURSOR` and `__REALTIME_TIMESTAMP`. */
const FIELDS = ["MESSAGE", "SYSLOG_IDENTIFIER", "SYSLOG_PID", "_PID", "_COMM", "_HOSTNAME"];

export class JournaldSource implements Source {
  readonly id: string;
  readonly #o: JournaldOptions;
  readonly #logger: Logger;
  /** Set when journalctl refused the stored cursor: the next run starts without it. */
  #ignoreCursor = false;
  #pid: number | undefined;

  constructor(opts: JournaldOptions) {
    for (const [name, v] of [
      ["unit", opts.unit],
      ["identifier", opts.identifier],
    ] as const) {
      if (v !== undefined && (v === "" || /[\0\n]/.test(v))) {
        throw new SipwardenError("CONFIG_INVALID", `journald ${name} is not a valid name`, {
          path: `sources.journald.${name}`,
        });
      }
    }
    this.#o = opts;
    this.#logger = opts.logger ?? NULL_LOGGER;
    this.id = opts.id ?? `journald:${opts.unit ?? opts.identifier ?? "all"}`;
  }

  /** The journalctl arguments for a run that resumes after `cursor` (or starts at the end). */
  args(cursor: string | undefined): string[] {
    const a = ["--follow", "--output=json", "--all", "--no-pager", "--quiet", `--output-fields=${FIELDS.join(",")}`];
    if (cursor !== undefined) a.push(`--after-cursor=${cursor}`, "--no-tail");
    else a.push("--lines=0");
    if (this.#o.unit !== undefined) a.push(`--unit=${this.#o.unit}`);
    if (this.#o.identifier !== undefined) a.push(`--identifier=${this.#o.identifier}`);
    // journalctl --follow needs an absolute path to watch a journal file.
    for (const f of this.#o.files ?? []) a.push(`--file=${resolve(f)}`);
    if (this.#o.directory !== undefined) a.push(`--directory=${resolve(this.#o.directory)}`);
    return a;
  }

  status(): SourceStatus {
    return { detail: this.#pid === undefined ? `${this.id} (stopped)` : `${this.id} journalctl pid ${this.#pid}` };
  }

  async run(emit: Emit, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const stored = this.#ignoreCursor ? undefined : this.#o.offsets?.get(this.id);
    const cursor = stored?.kind === "cursor" ? stored.cursor : undefined;
    const bin = this.#o.journalctl ?? "journalctl";
    const host = this.#o.hostname ?? hostname();
    const now = this.#o.now ?? Date.now;
    const format = this.#o.format ?? "auto";

    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(bin, this.args(cursor), { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      throw new SipwardenError("SOURCE_FAILED", `cannot start ${bin}: ${(e as Error).message}`, { cause: e });
    }
    this.#pid = child.pid;
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      stderr = (stderr + s).slice(-4096);
    });

    return new Promise<void>((resolvePromise, reject) => {
      let settled = false;
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        this.#pid = undefined;
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        if (err === null) resolvePromise();
        else reject(err);
      };
      const onAbort = () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        // journalctl stops on SIGTERM at once; this only guards against a wedged process.
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        }, 2000).unref();
      };
      signal.addEventListener("abort", onAbort, { once: true });

      const splitter = new LineSplitter({
        maxLineBytes: this.#o.maxLineBytes ?? 4 * 1024 * 1024,
        onOverflow: () => this.#logger.warn({ source: this.id }, "journal entry too large; skipped"),
        onLine: (json) => {
          let entry: JournalEntry;
          try {
            entry = JSON.parse(json) as JournalEntry;
          } catch {
            this.#logger.warn(
              { source: this.id, line: json.slice(0, 200) },
              "journalctl printed a line that is not JSON",
            );
            return;
          }
          const out = journalEntryToLines(entry, host);
          if (!out) return;
          const position =
            out.cursor === undefined ? undefined : encodePosition({ kind: "cursor", cursor: out.cursor });
          out.lines.forEach((text, i) => {
            const last = i === out.lines.length - 1;
            emit({ text, source: this.id, format, received: now(), ...(last && position && { position }) });
          });
        },
      });
      child.stdout.on("data", (chunk: Buffer) => {
        if (settled) return;
        try {
          splitter.push(chunk, 0, chunk.length);
        } catch (e) {
          finish(e);
        }
      });
      child.once("error", (e) => {
        finish(new SipwardenError("SOURCE_FAILED", `cannot run ${bin}: ${e.message}`, { cause: e }));
      });
      child.once("close", (code, sig) => {
        if (signal.aborted) {
          finish(null);
          return;
        }
        if (cursor !== undefined && /cursor/i.test(stderr)) {
          // A cursor journalctl cannot parse would fail every restart; start from the end instead.
          this.#ignoreCursor = true;
          this.#logger.warn(
            { source: this.id, cursor },
            "journalctl refused the stored cursor; next run starts at the end",
          );
        }
        const why = sig ? `signal ${sig}` : `status ${code}`;
        const tail = stderr.trim().split("\n").slice(-3).join(" | ");
        finish(new SipwardenError("SOURCE_FAILED", `journalctl exited (${why})${tail ? `: ${tail}` : ""}`));
      });
    });
  }
}

/** One `journalctl -o json` object: values are strings, byte arrays, or arrays of either. */
export type JournalEntry = Record<string, unknown>;

/**
 * The syslog-style lines for one entry, and its cursor. Null for an entry without a message or
 * timestamp. The time is written in UTC (`+00:00`), as rsyslog does on a UTC host.
 */
export function journalEntryToLines(
  entry: JournalEntry,
  fallbackHost: string,
): { lines: string[]; cursor?: string } | null {
  const message = fieldText(entry.MESSAGE);
  const micros = fieldText(entry.__REALTIME_TIMESTAMP);
  if (message === undefined || micros === undefined || !/^\d+$/.test(micros)) return null;
  const us = BigInt(micros);
  const iso = new Date(Number(us / 1000n)).toISOString();
  const time = `${iso.slice(0, 19)}.${(us % 1_000_000n).toString().padStart(6, "0")}+00:00`;
  const host = fieldText(entry._HOSTNAME) ?? fallbackHost;
  const ident = fieldText(entry.SYSLOG_IDENTIFIER) ?? fieldText(entry._COMM) ?? "-";
  const pid = fieldText(entry.SYSLOG_PID) ?? fieldText(entry._PID);
  const prefix = `${time} ${host} ${ident}${pid ? `[${pid}]` : ""}: `;
  const lines = message
    .split("\n")
    .map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
    .filter((l) => l !== "")
    .map((l) => prefix + l);
  if (lines.length === 0) return null;
  const cursor = fieldText(entry.__CURSOR);
  return cursor === undefined ? { lines } : { lines, cursor };
}

/**
 * A field's text. journalctl prints a binary value (invalid UTF-8, control characters) as an
 * array of byte values, and a field that occurs more than once as an array of values, of which
 * the first is taken. Bad UTF-8 becomes U+FFFD.
 */
export function fieldText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (!Array.isArray(v) || v.length === 0) return undefined;
  if (v.every((b) => typeof b === "number")) return Buffer.from(v as number[]).toString("utf8");
  return fieldText(v[0]);
}

/** Build a journald source from one `sources.journald[]` entry. */
export function journaldFromConfig(
  cfg: { unit?: string; identifier?: string; format: RawRecord["format"] },
  deps: { offsets: OffsetStore; logger?: Logger; journalctl?: string },
): JournaldSource {
  return new JournaldSource({
    ...(cfg.unit !== undefined && { unit: cfg.unit }),
    ...(cfg.identifier !== undefined && { identifier: cfg.identifier }),
    format: cfg.format,
    offsets: deps.offsets,
    ...(deps.logger && { logger: deps.logger }),
    ...(deps.journalctl !== undefined && { journalctl: deps.journalctl }),
  });
}
