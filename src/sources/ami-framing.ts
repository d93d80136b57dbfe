/**
 * Incremental AMI frame parser (formats.md §2): bytes in, messages out.
 *
 * Lines end in `\r\n` or a bare `\n`; a blank line ends a message; keys may repeat; a value
 * may itself contain `": "` (split on the first one only). The optional first line is the
 * `Asterisk Call Manager/x.y.z` banner, which has no blank-line terminator.
 *
 * Cost is O(n) in the bytes received. Each chunk is scanned once for line ends; a message is
 * cut out of the chunk as one slice (its text) instead of being rebuilt from fields, and the
 * part of a message that arrived in earlier chunks is kept as a list of pieces joined once,
 * so a message or a long line delivered byte by byte is never re-scanned or re-copied per
 * byte. Fields are split from the text only when someone reads them: the AMI source reads
 * them for responses, and hands events on as text.
 */
import { StringDecoder } from "node:string_decoder";
import { SipwardenError } from "../core/errors.js";

/** One AMI message. */
export class AmiMessage {
  private parsed: [string, string][] | null = null;

  /** @param text The message's lines joined with `\n`, without the terminating blank line. */
  constructor(readonly text: string) {}

  /**
   * `[key, value]` pairs in wire order, repeated keys kept. A line without `": "` (legacy
   * `Response: Follows` command output) is kept as `["", line]`; `Key:` with nothing after it
   * gives `[Key, ""]`.
   */
  get fields(): [string, string][] {
    if (this.parsed === null) this.parsed = splitFields(this.text);
    return this.parsed;
  }

  /** The first line's key: `Event` or `Response` for everything Asterisk sends. */
  get kind(): string {
    const t = this.text;
    const sep = t.indexOf(": ");
    const nl = t.indexOf("\n");
    return sep >= 0 && (nl < 0 || sep < nl) ? t.slice(0, sep) : "";
  }

  /** The first line's value (the event name for an event). */
  get head(): string {
    const t = this.text;
    const nl = t.indexOf("\n");
    const line = nl < 0 ? t : t.slice(0, nl);
    const sep = line.indexOf(": ");
    return sep < 0 ? "" : line.slice(sep + 2);
  }
}

function splitFields(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(": ");
    if (sep >= 0) out.push([line.slice(0, sep), line.slice(sep + 2)]);
    else if (line.endsWith(":") && line.indexOf(":") === line.length - 1) out.push([line.slice(0, -1), ""]);
    else out.push(["", line]);
  }
  return out;
}

/** Options for {@link AmiFramer}. */
export interface AmiFramerOptions {
  /** Called for every complete message, in order. */
  onMessage(message: AmiMessage): void;
  /** When given, the first line is the banner and goes here instead of into a message. */
  onBanner?(banner: string): void;
  /** Longest accepted line, in characters after decoding. Default 1 MiB. */
  maxLineLength?: number;
  /** Most lines in one message. Default 100 000 (a big `Command` output). */
  maxFields?: number;
}

const DEFAULT_MAX_LINE = 1 << 20;
const DEFAULT_MAX_FIELDS = 100_000;

/** First value of `key` in a message, or undefined. */
export function field(m: AmiMessage, key: string): string | undefined {
  for (const [k, v] of m.fields) if (k === key) return v;
  return undefined;
}

/** The message as `Key: Value` lines joined with `\n` (no trailing newline): the AMI RawRecord text. */
export function serializeMessage(m: AmiMessage): string {
  return m.text;
}

/** Encodes an action (client → server) with CRLF line ends and the blank-line terminator. */
export function encodeAction(fields: readonly (readonly [string, string])[]): string {
  let out = "";
  for (const [k, v] of fields) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v))
      throw new SipwardenError("AMI_PROTOCOL", `AMI header ${JSON.stringify(k)} must not contain CR or LF`);
    out += k + ": " + v + "\r\n";
  }
  return out + "\r\n";
}

/**
 * Splits an AMI byte stream into messages. Feed it with {@link push}; it calls back
 * synchronously. After a protocol error (line or message too long) it throws
 * `SipwardenError("AMI_PROTOCOL")` and must be {@link reset} before reuse.
 */
export class AmiFramer {
  private decoder = new StringDecoder("utf8");
  /** The current message (or banner) as received in earlier chunks, raw line ends included. */
  private carry: string[] = [];
  /** Characters of the current, unfinished line that are in `carry`. */
  private partialLen = 0;
  /** Whether that unfinished line so far is exactly "\r" (so a leading "\n" makes it blank). */
  private partialIsCr = false;
  /** Complete lines in the current message. */
  private lines = 0;
  private wantBanner: boolean;
  private readonly onMessage: (m: AmiMessage) => void;
  private readonly onBanner: ((b: string) => void) | undefined;
  private readonly maxLine: number;
  private readonly maxFields: number;

  constructor(opts: AmiFramerOptions) {
    this.onMessage = opts.onMessage;
    this.onBanner = opts.onBanner;
    this.wantBanner = opts.onBanner !== undefined;
    this.maxLine = opts.maxLineLength ?? DEFAULT_MAX_LINE;
    this.maxFields = opts.maxFields ?? DEFAULT_MAX_FIELDS;
  }

  /** True while a message (or line) has started and not yet ended: a close now would cut it. */
  get midMessage(): boolean {
    return this.lines > 0 || this.partialLen > 0;
  }

  /** Forgets any partial line or message (after a reconnect). */
  reset(): void {
    this.decoder = new StringDecoder("utf8");
    this.carry = [];
    this.partialLen = 0;
    this.partialIsCr = false;
    this.lines = 0;
    this.wantBanner = this.onBanner !== undefined;
  }

  push(chunk: Buffer | string): void {
    const text = typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    const n = text.length;
    if (n === 0) return;
    /** Where the current message's text begins in `text` (it may have begun in `carry`). */
    let msgStart = 0;
    let pos = 0;
    let nl = text.indexOf("\n");
    while (nl >= 0) {
      // The line is [pos, nl) plus, for the first line of this chunk, what `carry` holds of it.
      const carried = pos === 0 ? this.partialLen : 0;
      let len = carried + nl - pos;
      if (nl > pos ? text.charCodeAt(nl - 1) === 13 : carried > 0 && this.partialIsCr) len--;
      if (pos === 0) {
        this.partialLen = 0;
        this.partialIsCr = false;
      }
      if (len > this.maxLine) throw this.tooLong();
      if (this.wantBanner) {
        if (len > 0) {
          this.wantBanner = false;
          const raw = this.take(text, msgStart, nl);
          this.onBanner!(raw.charCodeAt(raw.length - 1) === 13 ? raw.slice(0, -1) : raw);
        }
        this.carry = [];
        msgStart = nl + 1;
      } else if (len > 0) {
        if (++this.lines > this.maxFields)
          throw new SipwardenError("AMI_PROTOCOL", `AMI message with more than ${this.maxFields} lines`);
      } else if (this.lines > 0) {
        // A blank line ends the message: its text is everything before this line's start,
        // minus the blank line's own "\r" when that arrived at the end of the last chunk.
        this.lines = 0;
        const raw = this.take(text, msgStart, pos);
        this.onMessage(new AmiMessage(normalize(carried > 0 ? raw.slice(0, raw.length - carried) : raw)));
        msgStart = nl + 1;
      } else {
        // Blank lines between messages; Asterisk sends none, but they are harmless.
        this.carry = [];
        msgStart = nl + 1;
      }
      pos = nl + 1;
      nl = text.indexOf("\n", pos);
    }
    // The unfinished line (and message) waits for the next chunk.
    if (msgStart < n) {
      this.carry.push(msgStart === 0 ? text : text.slice(msgStart));
      const tail = n - pos;
      this.partialLen += tail;
      this.partialIsCr = this.partialLen === 1 && text.charCodeAt(n - 1) === 13;
      if (this.partialLen > this.maxLine) throw this.tooLong();
    }
  }

  /** The carried part plus `text[from, to)`, and forgets the carry. */
  private take(text: string, from: number, to: number): string {
    const own = text.slice(from, to);
    if (this.carry.length === 0) return own;
    this.carry.push(own);
    const all = this.carry.join("");
    this.carry = [];
    return all;
  }

  private tooLong(): SipwardenError {
    return new SipwardenError("AMI_PROTOCOL", `AMI line longer than ${this.maxLine} characters`);
  }
}

/**
 * `raw` is a message's lines, each still ending in `\n` or `\r\n`. Returns them joined with
 * `\n` and without the last line end. Asterisk sends CRLF, so the replace usually runs; it
 * also gives the record its own copy instead of a slice that would pin the whole chunk.
 */
function normalize(raw: string): string {
  const s = raw.indexOf("\r") >= 0 ? raw.replaceAll("\r\n", "\n") : raw;
  return s.charCodeAt(s.length - 1) === 10 ? s.slice(0, -1) : s;
}
