/**
 * Line prefixes written by syslog daemons and journald, shared by the line parsers.
 *
 * Accepted forms (the parts after the timestamp are `[host] tag[pid]: message`):
 * - rsyslog RSYSLOG_FileFormat and `journalctl -o short-iso[-precise]`:
 *   `2024-05-14T10:21:08.020117+00:00 sip1 /usr/sbin/kamailio[2146]: …` (offset `Z`, `+hh:mm`, `+hhmm`, or none);
 * - classic BSD syslog and `journalctl -o short[-precise]`: `May 14 10:21:08[.020117] sip1 kamailio[2146]: …`;
 * - raw datagrams as glibc's syslog(3) sends them: `<134>Nov 21 19:13:18 kamailio: …` (no host);
 * - `journalctl -o short-full`: `Tue 2024-05-14 10:21:08 UTC sip1 kamailio[2146]: …`;
 * - `journalctl -o short-unix`: `1715682068.020117 sip1 kamailio[2146]: …`.
 *
 * A timestamp with no zone is local time in `ctx.zone`; one with no year gets its year from
 * `ctx.now` (see `inferYear`). Zone abbreviations other than UTC/GMT (short-full) are not
 * trusted either: those times are also read as local time in `ctx.zone`.
 */
import { inferYear, localToEpoch, monthIndex, parseOffset } from "../core/time.js";
import type { ParseContext } from "./types.js";

/** The pieces of a syslog-style line. */
export interface SyslogPrefix {
  /** Epoch milliseconds. */
  readonly time: number;
  /** The host name field; null when the line has none (raw `<PRI>` datagrams). */
  readonly host: string | null;
  /** The program tag, e.g. `/usr/sbin/kamailio` or `freeswitch`. */
  readonly tag: string;
  readonly pid: number | null;
  /** Everything after `tag[pid]: `. */
  readonly message: string;
}

/** A timestamp found at the start of a text and where it ends. */
export interface LeadingTimestamp {
  /** Epoch milliseconds. */
  readonly time: number;
  /** Index just past the timestamp (and a closing bracket, if it was bracketed). */
  readonly end: number;
}

const ISO = /(\d{4})-(\d{2})-(\d{2})([T ])(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?/y;
const BSD = /([A-Z][a-z]{2}) ( ?\d|\d\d) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?/y;
const FULL =
  /(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ([A-Za-z][\w+-]{0,9})/y;
const UNIX = /(\d{9,11})\.(\d{1,9})/y;
const TAG = /([^\s[\]:]+)(?:\[(\d{1,10})\])?:(?: |$)/y;
const HOST = /([^\s]+) /y;

function fractionMs(frac: string | undefined): number {
  if (!frac) return 0;
  return Math.floor(Number((frac + "00").slice(0, 3)));
}

function validClock(mo: number, d: number, h: number, mi: number, s: number): boolean {
  return mo >= 0 && mo <= 11 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60;
}

function utcOrLocal(
  ctx: ParseContext,
  utc: boolean,
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  ms: number,
): number {
  return utc ? Date.UTC(y, mo, d, h, mi, s, ms) : localToEpoch(ctx.zone, y, mo, d, h, mi, s, ms);
}

/**
 * Reads a timestamp at `at` in `text`: ISO 8601 / RFC 3339 (`T` or space, optional fraction and
 * offset), BSD syslog `Mmm dd hh:mm:ss`, journald short-full and short-unix. With
 * `allowSpaceSeparator=false` only the `T` form of ISO is accepted (a syslog prefix never uses
 * a space there, and FreeSWITCH's own dates must not be mistaken for one).
 */
export function readTimestamp(
  text: string,
  ctx: ParseContext,
  at = 0,
  allowSpaceSeparator = true,
): LeadingTimestamp | null {
  const c = text.charCodeAt(at);
  if (c >= 48 && c <= 57) {
    ISO.lastIndex = at;
    const m = ISO.exec(text);
    if (m) {
      if (m[4] === " " && !allowSpaceSeparator) return null;
      const y = Number(m[1]);
      const mo = Number(m[2]) - 1;
      const d = Number(m[3]);
      const h = Number(m[5]);
      const mi = Number(m[6]);
      const s = Number(m[7]);
      if (!validClock(mo, d, h, mi, s)) return null;
      const ms = fractionMs(m[8]);
      const zone = m[9];
      let time: number;
      if (zone === undefined) {
        time = localToEpoch(ctx.zone, y, mo, d, h, mi, s, ms);
      } else {
        const off = zone.length === 3 ? parseOffset(zone + "00") : parseOffset(zone);
        if (Number.isNaN(off)) return null;
        time = Date.UTC(y, mo, d, h, mi, s, ms) - off;
      }
      return { time, end: ISO.lastIndex };
    }
    UNIX.lastIndex = at;
    const u = UNIX.exec(text);
    if (u) return { time: Number(u[1]) * 1000 + fractionMs(u[2]), end: UNIX.lastIndex };
    return null;
  }
  if (c >= 65 && c <= 90) {
    BSD.lastIndex = at;
    const m = BSD.exec(text);
    if (m) {
      const mo = monthIndex(m[1]!);
      const d = Number(m[2]);
      const h = Number(m[3]);
      const mi = Number(m[4]);
      const s = Number(m[5]);
      if (!validClock(mo, d, h, mi, s)) return null;
      const y = inferYear(ctx.zone, ctx.now, mo, d);
      return { time: localToEpoch(ctx.zone, y, mo, d, h, mi, s, fractionMs(m[6])), end: BSD.lastIndex };
    }
    FULL.lastIndex = at;
    const f = FULL.exec(text);
    if (f) {
      const mo = Number(f[2]) - 1;
      const d = Number(f[3]);
      const h = Number(f[4]);
      const mi = Number(f[5]);
      const s = Number(f[6]);
      if (!validClock(mo, d, h, mi, s)) return null;
      const utc = f[8] === "UTC" || f[8] === "GMT";
      return {
        time: utcOrLocal(ctx, utc, Number(f[1]), mo, d, h, mi, s, fractionMs(f[7])),
        end: FULL.lastIndex,
      };
    }
  }
  return null;
}

/**
 * A timestamp at the very start of `text`, optionally inside `[…]` (as Asterisk writes it).
 * Used for lines whose format is otherwise unknown (custom patterns, bare stderr captures).
 */
export function leadingTimestamp(text: string, ctx: ParseContext): LeadingTimestamp | null {
  if (text.charCodeAt(0) === 91 /* [ */) {
    const t = readTimestamp(text, ctx, 1);
    if (!t || text.charCodeAt(t.end) !== 93 /* ] */) return null;
    return { time: t.time, end: t.end + 1 };
  }
  return readTimestamp(text, ctx, 0);
}

/**
 * Splits a syslog or journald line into time, host, tag, pid and message. Pure; returns null
 * when the line does not start with one of the prefixes listed in the module comment.
 */
export function splitSyslogPrefix(line: string, ctx: ParseContext): SyslogPrefix | null {
  let at = 0;
  if (line.charCodeAt(0) === 60 /* < */) {
    const close = line.indexOf(">");
    if (close < 2 || close > 4) return null;
    for (let i = 1; i < close; i++) {
      const d = line.charCodeAt(i);
      if (d < 48 || d > 57) return null;
    }
    at = close + 1;
  }
  const ts = readTimestamp(line, ctx, at, false);
  if (!ts) return null;
  at = ts.end;
  if (line.charCodeAt(at) !== 32) return null;
  while (line.charCodeAt(at) === 32) at++;

  // The host field is optional (raw datagrams); a tag always ends in ':' and a host never does.
  let host: string | null = null;
  TAG.lastIndex = at;
  let t = TAG.exec(line);
  if (!t) {
    HOST.lastIndex = at;
    const h = HOST.exec(line);
    if (!h) return null;
    host = h[1]!;
    TAG.lastIndex = HOST.lastIndex;
    t = TAG.exec(line);
    if (!t) return null;
  }
  return {
    time: ts.time,
    host,
    tag: t[1]!,
    pid: t[2] === undefined ? null : Number(t[2]),
    message: line.slice(TAG.lastIndex),
  };
}
