/**
 * Splits the logger prefix off an Asterisk log line, by hand with charCodeAt so that the hot
 * path allocates nothing. Accepted shapes (formats.md §3.1):
 *
 *   [May  4 09:01:02] NOTICE[31877][C-0000001b] chan_sip.c: msg           file channel, 11+
 *   [2024-05-14 10:21:07.112] NOTICE[2191] res_pjsip/pjsip_distributor.c: msg   dateformat=%F %T[.%3q]
 *   [Mar 27 10:06:14] NOTICE[566]: chan_sip.c:28926 handle_request_register: msg   [plain] / console
 *   [2016-06-09 00:01:02] NOTICE [22382] manager.c: msg                  stray space (seen in fail2ban's corpus)
 *   May 14 10:21:07 host asterisk[1234]: NOTICE[5678]: chan_sip.c:1234 in f: msg   syslog, journalctl short
 *   2024-05-14T10:21:07.123+02:00 host asterisk[1234]: NOTICE[5678]: …   rsyslog RFC 3339, journalctl short-iso
 *   NOTICE[566]: chan_sip.c:28926 handle_request_register: msg           journalctl -o cat (time: ctx.now)
 *
 * After a syslog tag an extra Asterisk `[date] ` may follow (Asterisk logging to journald via its
 * console); the outer, syslog time wins. The 1.8 prefix is the file prefix without `[C-…]`.
 */
import { inferYear, localToEpoch, monthIndex } from "../core/time.js";
import type { ParseContext } from "./types.js";

/** Where the parts of the current line are. Reused for every line: parsing is synchronous. */
export interface AsteriskPrefix {
  /** Epoch ms of the line's own timestamp (ctx.now when the line has none). */
  time: number;
  /** Start of the location part (`chan_sip.c`, `chan_sip.c:123 in f`, `Ext. s:6 in @ ctx`). */
  locStart: number;
  /** End of the location part (index of its `": "`). */
  locEnd: number;
  /** Start of the message proper. */
  msgStart: number;
  /** End of the message without trailing whitespace / CR. */
  end: number;
}

// inferYear's answer for a date depends only on the local day of ctx.now, and local midnights
// fall on 15-minute UTC boundaries in every current zone (offsets such as +05:45 included): a
// memo keyed on the quarter-hour of ctx.now is exact.
const QUARTER = 900_000;

/**
 * Calls that bypass a memo before it is used. V8 collects a function's type feedback only
 * from its ninth call or so, and TurboFan deoptimises optimised code that reaches a call it
 * has no feedback for. A memo-miss path that ran only on the first line (before any feedback)
 * would next run at the first minute change, after TurboFan compiled its hot caller: one
 * deoptimisation, and thousands of lines in slower code until the recompile. So the first
 * lines bypass the memos (they are exact caches: the result is the same) and the miss paths
 * get their feedback while the code is still cold.
 */
const MEMO_WARMUP = 64;
/** Lines left before the date memos below are used (see MEMO_WARMUP). */
let memoWarmup = MEMO_WARMUP;

// One-entry memo of the epoch at the start of the last minute seen: log lines come in order,
// so nearly every line hits it and skips the zone arithmetic.
let memoKey = -1;
let memoZone = "";
let memoNowQuarter = Number.NaN;
let memoBase = 0;

function wallToEpoch(
  ctx: ParseContext,
  year: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  ms: number,
): number {
  if (mo < 0 || mo > 11 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return Number.NaN;
  const key = ((((year + 1) * 12 + mo) * 32 + d) * 24 + h) * 60 + mi;
  const nowQuarter = year < 0 ? Math.floor(ctx.now / QUARTER) : 0;
  if (key !== memoKey || ctx.zone !== memoZone || nowQuarter !== memoNowQuarter || memoWarmup > 0) {
    const y = year < 0 ? inferYear(ctx.zone, ctx.now, mo, d) : year;
    const base = localToEpoch(ctx.zone, y, mo, d, h, mi, 0, 0);
    if (Number.isNaN(base)) return Number.NaN;
    memoKey = key;
    memoZone = ctx.zone;
    memoNowQuarter = nowQuarter;
    memoBase = base;
  }
  return memoBase + s * 1000 + ms;
}

/** Month index of the three letters at i without allocating a substring (hit on every line). */
function monthAt(line: string, i: number): number {
  const key = (line.charCodeAt(i) << 16) | (line.charCodeAt(i + 1) << 8) | line.charCodeAt(i + 2);
  const m = MONTH_KEYS.get(key);
  return m === undefined ? -1 : m;
}

const MONTH_KEYS = new Map<number, number>();
for (const name of ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]) {
  MONTH_KEYS.set((name.charCodeAt(0) << 16) | (name.charCodeAt(1) << 8) | name.charCodeAt(2), monthIndex(name));
}

/** Index just past the last timestamp read by readDate. */
let dateEnd = 0;

function digit(line: string, i: number): number {
  const c = line.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -100;
}

function two(line: string, i: number): number {
  const v = digit(line, i) * 10 + digit(line, i + 1);
  return v >= 0 ? v : -1;
}

/** `HH:MM:SS[.frac]` at i → ms since midnight parts; sets dateEnd. Returns [h,m,s,ms] packed or -1. */
function readClock(line: string, i: number): number {
  const h = two(line, i);
  const mi = two(line, i + 3);
  const s = two(line, i + 6);
  if (h < 0 || mi < 0 || s < 0 || line.charCodeAt(i + 2) !== 58 || line.charCodeAt(i + 5) !== 58) return -1;
  if (h > 23 || mi > 59 || s > 60) return -1;
  let j = i + 8;
  let ms = 0;
  const sep = line.charCodeAt(j);
  if ((sep === 46 || sep === 44) && digit(line, j + 1) >= 0) {
    // Fractions of any length: keep milliseconds.
    j++;
    let scale = 100;
    while (digit(line, j) >= 0) {
      ms += digit(line, j) * scale;
      scale /= 10;
      j++;
    }
    ms = Math.floor(ms);
  }
  dateEnd = j;
  return ((h * 60 + mi) * 61 + s) * 1000 + ms;
}

/** `±hh:mm`, `±hhmm`, `±hh` or `Z` at i → offset ms (sets dateEnd), or NaN when absent. */
function readOffset(line: string, i: number): number {
  const c = line.charCodeAt(i);
  if (c === 90 /* Z */) {
    dateEnd = i + 1;
    return 0;
  }
  if (c !== 43 && c !== 45) return Number.NaN;
  const hh = two(line, i + 1);
  if (hh < 0) return Number.NaN;
  let j = i + 3;
  if (line.charCodeAt(j) === 58) j++;
  let mm = two(line, j);
  if (mm < 0) {
    mm = 0;
    j = i + 3;
  } else {
    j += 2;
  }
  dateEnd = j;
  const v = (hh * 60 + mm) * 60_000;
  return c === 45 ? -v : v;
}

// Text memo: the date text up to the minute of the last zone-less timestamp read ("2024-05-14 10:21",
// "May  4 09:01") and the epoch of that minute. A line in the same minute costs one startsWith.
let textMemo = "";
let textMemoBase = 0;
let textMemoZone = "";
let textMemoNowQuarter = -1;

/** `:SS[.fff]` at j (after a memoised minute): ms within the minute, or -1; sets dateEnd. */
function readSeconds(line: string, j: number): number {
  if (line.charCodeAt(j) !== 58) return -1;
  const s = two(line, j + 1);
  if (s < 0 || s > 60) return -1;
  let k = j + 3;
  let ms = 0;
  const sep = line.charCodeAt(k);
  if ((sep === 46 || sep === 44) && digit(line, k + 1) >= 0) {
    k++;
    let scale = 100;
    for (let d = digit(line, k); d >= 0; d = digit(line, ++k)) {
      ms += d * scale;
      scale /= 10;
    }
  }
  dateEnd = k;
  return s * 1000 + Math.floor(ms);
}

/**
 * Reads `Mmm dd HH:MM:SS[.f]` (day padded with a space or not) or `YYYY-MM-DD[ T]HH:MM:SS[.f][zone]`
 * at i. `isoSep` is the separator the ISO form must use (space in brackets, `T` in syslog).
 * Returns epoch ms or NaN; sets dateEnd.
 */
function readDate(line: string, i: number, ctx: ParseContext, isoSep: number): number {
  if (inMemoMinute(line, i, ctx)) {
    const within = readSeconds(line, i + textMemo.length);
    const next = line.charCodeAt(dateEnd);
    // An explicit offset after the time takes the slow path.
    if (within >= 0 && next !== 43 && next !== 45 && next !== 90) return textMemoBase + within;
  }
  const c = line.charCodeAt(i);
  if (c >= 65 && c <= 90) {
    if (line.charCodeAt(i + 3) !== 32) return Number.NaN;
    const mo = monthAt(line, i);
    if (mo < 0) return Number.NaN;
    let j = i + 4;
    if (line.charCodeAt(j) === 32) j++;
    let d = digit(line, j);
    if (d < 0) return Number.NaN;
    j++;
    if (digit(line, j) >= 0) {
      d = d * 10 + digit(line, j);
      j++;
    }
    if (line.charCodeAt(j) !== 32) return Number.NaN;
    const clock = readClock(line, j + 1);
    if (clock < 0) return Number.NaN;
    const t = clockToEpoch(ctx, -1, mo, d, clock);
    if (!Number.isNaN(t)) remember(line, i, j + 6, ctx, true);
    return t;
  }
  if (c < 48 || c > 57) return Number.NaN;
  const y = digit(line, i) * 1000 + digit(line, i + 1) * 100 + digit(line, i + 2) * 10 + digit(line, i + 3);
  const mo = two(line, i + 5) - 1;
  const d = two(line, i + 8);
  if (y < 0 || mo < 0 || d < 0 || line.charCodeAt(i + 4) !== 45 || line.charCodeAt(i + 7) !== 45) return Number.NaN;
  if (line.charCodeAt(i + 10) !== isoSep) return Number.NaN;
  const clock = readClock(line, i + 11);
  if (clock < 0) return Number.NaN;
  const clockEnd = dateEnd;
  const off = readOffset(line, clockEnd);
  if (Number.isNaN(off)) {
    dateEnd = clockEnd;
    const t = clockToEpoch(ctx, y, mo, d, clock);
    if (!Number.isNaN(t)) remember(line, i, i + 16, ctx, false);
    return t;
  }
  const ms = clock % 1000;
  const secs = (clock - ms) / 1000;
  const s = secs % 61;
  const hm = (secs - s) / 61;
  if (mo > 11 || d < 1 || d > 31) return Number.NaN;
  return Date.UTC(y, mo, d, Math.floor(hm / 60), hm % 60, s, ms) - off;
}

/** True when line[i…] starts with the memoised minute's text and the memo holds for ctx. */
function inMemoMinute(line: string, i: number, ctx: ParseContext): boolean {
  return (
    memoWarmup === 0 &&
    textMemo !== "" &&
    line.charCodeAt(i) === textMemo.charCodeAt(0) &&
    line.indexOf(textMemo, i) === i &&
    ctx.zone === textMemoZone &&
    (textMemoNowQuarter < 0 || textMemoNowQuarter === Math.floor(ctx.now / QUARTER))
  );
}

/** Keeps line[from, to) (the date up to the minute) and the minute's epoch from wallToEpoch. */
function remember(line: string, from: number, to: number, ctx: ParseContext, yearInferred: boolean): void {
  textMemo = line.slice(from, to);
  textMemoBase = memoBase;
  textMemoZone = ctx.zone;
  textMemoNowQuarter = yearInferred ? Math.floor(ctx.now / QUARTER) : -1;
}

function clockToEpoch(ctx: ParseContext, year: number, mo: number, d: number, clock: number): number {
  const ms = clock % 1000;
  const secs = (clock - ms) / 1000;
  const s = secs % 61;
  const hm = (secs - s) / 61;
  return wallToEpoch(ctx, year, mo, d, Math.floor(hm / 60), hm % 60, s, ms);
}

/**
 * Parses an Asterisk `[ … ]` date at i (i at the `[`). Returns epoch ms or NaN; sets dateEnd past `]`.
 */
function readBracketDate(line: string, i: number, ctx: ParseContext): number {
  const t = readDate(line, i + 1, ctx, 32);
  if (Number.isNaN(t) || line.charCodeAt(dateEnd) !== 93) return Number.NaN;
  dateEnd++;
  return t;
}

/** Level names whose lines never carry a security signal (and may echo packet contents). */
function ignoredLevel(first: number, len: number): boolean {
  if (first === 86) return len === 7; // VERBOSE
  if (first === 68) return len === 5 || len === 4; // DEBUG, DTMF
  if (first === 84) return len === 5; // TRACE
  return false;
}

/**
 * `LEVEL[lwp][C-xxxxxxxx]:? location: ` at i. Fills out.locStart/locEnd/msgStart, false when
 * the text there is not an Asterisk logger prefix or the level is one we ignore.
 */
function readLevel(line: string, i: number, out: AsteriskPrefix): boolean {
  // LEVEL (upper case, 4–10 letters), an optional space, "[lwp]": brackets found with indexOf,
  // which is cheaper than walking the characters; the message patterns are the strict part.
  const first = line.charCodeAt(i);
  if (first < 65 || first > 90 || line.charCodeAt(i + 1) < 65 || line.charCodeAt(i + 1) > 90) return false;
  const open = line.indexOf("[", i + 2);
  let len = open - i;
  if (line.charCodeAt(open - 1) === 32) len--;
  if (len < 4 || len > 10) return false;
  const d = line.charCodeAt(open + 1);
  if (d < 48 || d > 57) return false;
  let close = line.indexOf("]", open + 2);
  if (close < 0 || close > open + 12) return false;
  let c = line.charCodeAt(close + 1);
  if (c === 91) {
    // [C-%08x]
    if (line.charCodeAt(close + 2) !== 67 || line.charCodeAt(close + 3) !== 45) return false;
    const cid = line.indexOf("]", close + 4);
    if (cid < 0 || cid > close + 21) return false;
    close = cid;
    c = line.charCodeAt(close + 1);
  }
  let sp = close + 1;
  if (c === 58) c = line.charCodeAt(++sp);
  if (c !== 32) return false;
  if (ignoredLevel(first, len)) return false;
  out.locStart = sp + 1;
  const colon = line.indexOf(": ", sp + 1);
  if (colon < 0) return false;
  out.locEnd = colon;
  out.msgStart = colon + 2;
  return true;
}

/** Skips `host tag: ` after a syslog timestamp; returns the index after it or -1. */
function skipHostAndTag(line: string, i: number): number {
  if (line.charCodeAt(i) !== 32) return -1;
  while (line.charCodeAt(i) === 32) i++;
  const hostEnd = line.indexOf(" ", i);
  if (hostEnd <= i) return -1;
  const tagEnd = line.indexOf(": ", hostEnd + 1);
  if (tagEnd < 0) return -1;
  for (let k = hostEnd + 1; k < tagEnd; k++) if (line.charCodeAt(k) === 32) return -1;
  return tagEnd + 2;
}

/**
 * Fills `out` from the line's prefix. False when the line is not an Asterisk log line we read
 * (wrong shape, unparsable date, or an ignored level such as VERBOSE or DEBUG).
 */
export function readPrefix(line: string, ctx: ParseContext, out: AsteriskPrefix): boolean {
  if (memoWarmup > 0) memoWarmup--;
  let end = line.length;
  let e = line.charCodeAt(end - 1);
  while (e === 32 || e === 13 || e === 10 || e === 9) e = line.charCodeAt(--end - 1);
  out.end = end;
  const c0 = line.charCodeAt(0);
  let i: number;
  if (c0 === 91) {
    // Most lines: `[<the memoised minute>:SS] ` (no fraction), read here with one call instead
    // of the general path's five, which matters while V8 still runs this code unoptimised.
    const j = textMemo.length + 1;
    let t = Number.NaN;
    if (
      line.charCodeAt(j) === 58 &&
      line.charCodeAt(j + 3) === 93 &&
      line.charCodeAt(j + 4) === 32 &&
      inMemoMinute(line, 1, ctx)
    ) {
      const s = (line.charCodeAt(j + 1) - 48) * 10 + line.charCodeAt(j + 2) - 48;
      const d2 = line.charCodeAt(j + 2);
      if (s >= 0 && s <= 60 && d2 >= 48 && d2 <= 57) t = textMemoBase + s * 1000;
    }
    if (Number.isNaN(t)) {
      t = readBracketDate(line, 0, ctx);
      if (Number.isNaN(t) || line.charCodeAt(dateEnd) !== 32) return false;
      i = dateEnd + 1;
    } else {
      i = j + 5;
    }
    out.time = t;
  } else if (c0 >= 65 && c0 <= 90 && line.charCodeAt(1) >= 65 && line.charCodeAt(1) <= 90) {
    // No timestamp at all (journalctl -o cat): the caller's reference instant is the best we have.
    out.time = ctx.now;
    i = 0;
  } else {
    out.time = readDate(line, 0, ctx, 84 /* T */);
    if (Number.isNaN(out.time)) return false;
    i = skipHostAndTag(line, dateEnd);
    if (i < 0) return false;
    if (line.charCodeAt(i) === 91) {
      // Extra Asterisk timestamp inside a journald/syslog message: validated, not used.
      if (Number.isNaN(readBracketDate(line, i, ctx)) || line.charCodeAt(dateEnd) !== 32) return false;
      i = dateEnd + 1;
    }
  }
  return readLevel(line, i, out);
}

// EventTV memo: "YYYY-MM-DDTHH:MM" plus the offset text, and the epoch of that minute.
let tvMinute = "";
let tvOffset = "";
let tvBase = 0;
/** Security lines left before the EventTV memo is used (see MEMO_WARMUP): its own count, since only security lines call it. */
let tvWarmup = MEMO_WARMUP;

/**
 * A security event's EventTV in line[start, stop): 12+ `2024-05-14T10:21:07.112+0000`
 * (server-local time with its offset) or 1.8/11 `tv_sec-tv_usec` (`1715682067-213377`).
 * NaN when it is neither.
 */
export function readEventTime(line: string, start: number, stop: number, ctx: ParseContext): number {
  if (line.charCodeAt(start + 10) === 84) {
    // (The memo is bypassed at first, for the reason given at MEMO_WARMUP.)
    if (tvWarmup > 0) tvWarmup--;
    else if (
      tvMinute !== "" &&
      line.indexOf(tvMinute, start) === start &&
      line.startsWith(tvOffset, stop - tvOffset.length)
    ) {
      const within = readSeconds(line, start + 16);
      if (within >= 0 && dateEnd === stop - tvOffset.length) return tvBase + within;
    }
    const t = readDate(line, start, ctx, 84);
    if (dateEnd !== stop || Number.isNaN(t)) return Number.NaN;
    // Remember the minute: its epoch is t less the seconds part.
    const within = readSeconds(line, start + 16);
    const offStart = dateEnd;
    if (within >= 0 && offStart < stop) {
      tvMinute = line.slice(start, start + 16);
      tvOffset = line.slice(offStart, stop);
      tvBase = t - within;
    }
    return t;
  }
  let sec = 0;
  let i = start;
  for (; i < stop && i - start < 12; i++) {
    const d = digit(line, i);
    if (d < 0) break;
    sec = sec * 10 + d;
  }
  if (i === start || line.charCodeAt(i) !== 45) return Number.NaN;
  let usec = 0;
  const u = ++i;
  for (; i < stop && i - u < 7; i++) {
    const d = digit(line, i);
    if (d < 0) return Number.NaN;
    usec = usec * 10 + d;
  }
  if (i === u || i !== stop || usec > 999_999) return Number.NaN;
  return sec * 1000 + Math.floor(usec / 1000);
}
