/**
 * Byte-level routing for bulk readers, on raw bytes and without allocating:
 *
 * - an Asterisk file-channel line `[date] LEVEL[…` whose level is VERBOSE, DEBUG, TRACE or DTMF
 *   yields no event (the Asterisk parser never reads those levels: they echo packets and
 *   dialplan arguments): ROUTE_SKIP;
 * - any other `[date] LEVEL[…` line can only be Asterisk's (no other built-in format starts
 *   with a bracketed date followed by an upper-case level and its `[lwp]`), so it goes straight
 *   to the Asterisk parser, which rejects an ordinary line after a few character reads:
 *   ROUTE_DIRECT;
 * - everything else: ROUTE_NEEDLES (needle prefilter, then every parser).
 */
import { ROUTE_DIRECT, ROUTE_NEEDLES, ROUTE_SKIP, type Route } from "./types.js";

/** `word` (ASCII) at b[i…], wholly before `end`. */
function wordAt(b: Uint8Array, i: number, end: number, word: string): boolean {
  if (i + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
  return true;
}

export function asteriskRoute(b: Uint8Array, start: number, end: number): Route {
  if (b[start] !== 0x5b /* [ */) return ROUTE_NEEDLES;
  // The closing bracket: first where the three common date formats put it (`%F %T`, `%b %e %T`,
  // `%F %T.%3q`), else the first one within 48 bytes. (When a "]" comes before the one found at
  // a fixed place, the line is no well-formed Asterisk line, and no other built-in format starts
  // with "[": whichever bracket is taken, no parser yields an event for it. A property test
  // holds the router to that.)
  let i: number;
  const n = end - start;
  if (n > 20 && b[start + 20] === 0x5d) i = start + 20;
  else if (n > 16 && b[start + 16] === 0x5d) i = start + 16;
  else if (n > 24 && b[start + 24] === 0x5d) i = start + 24;
  else {
    const lim = Math.min(end, start + 48);
    i = start + 1;
    while (i < lim && b[i] !== 0x5d) i++;
    if (i >= lim) return ROUTE_NEEDLES;
  }
  if (b[i + 1] !== 0x20) return ROUTE_NEEDLES;
  i += 2;
  const c = b[i];
  if (c === 0x56 /* V */) {
    // "VERBOSE[" (4 of 5 lines in a busy PBX's full log), spelled out: no loop on this path.
    if (
      i + 8 <= end &&
      b[i + 7] === 0x5b &&
      b[i + 1] === 0x45 &&
      b[i + 2] === 0x52 &&
      b[i + 3] === 0x42 &&
      b[i + 4] === 0x4f &&
      b[i + 5] === 0x53 &&
      b[i + 6] === 0x45
    ) {
      return ROUTE_SKIP;
    }
  } else if (c === 0x44 /* D */) {
    if (wordAt(b, i, end, "DEBUG[") || wordAt(b, i, end, "DTMF[")) return ROUTE_SKIP;
  } else if (c === 0x54 /* T */) {
    if (wordAt(b, i, end, "TRACE[")) return ROUTE_SKIP;
  }
  // LEVEL: 4 to 10 upper-case letters, then `[` or ` [` (the lwp).
  let j = i;
  while (j < end && j - i <= 10 && upper(b[j])) j++;
  const len = j - i;
  if (len < 4 || len > 10) return ROUTE_NEEDLES;
  if (b[j] === 0x20) j++;
  return b[j] === 0x5b ? ROUTE_DIRECT : ROUTE_NEEDLES;
}

function upper(c: number | undefined): boolean {
  return c !== undefined && c >= 65 && c <= 90;
}

/** True for the lines asteriskRoute skips. */
export function asteriskSkipLine(b: Uint8Array, start: number, end: number): boolean {
  return asteriskRoute(b, start, end) === ROUTE_SKIP;
}
