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

const LEVELS: readonly Uint8Array[] = ["VERBOSE[", "DEBUG[", "TRACE[", "DTMF["].map((s) => Buffer.from(s, "latin1"));

function startsWith(b: Uint8Array, i: number, end: number, word: Uint8Array): boolean {
  if (i + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return false;
  return true;
}

function upper(c: number | undefined): boolean {
  return c !== undefined && c >= 65 && c <= 90;
}

export function asteriskRoute(b: Uint8Array, start: number, end: number): Route {
  if (b[start] !== 0x5b /* [ */) return ROUTE_NEEDLES;
  const lim = Math.min(end, start + 48);
  let i = start + 1;
  while (i < lim && b[i] !== 0x5d /* ] */) i++;
  if (i >= lim || b[i + 1] !== 0x20) return ROUTE_NEEDLES;
  i += 2;
  const c = b[i];
  if (c === 0x56 /* V */ || c === 0x44 /* D */ || c === 0x54 /* T */) {
    for (const w of LEVELS) if (c === w[0] && startsWith(b, i, end, w)) return ROUTE_SKIP;
  }
  // LEVEL: 4 to 10 upper-case letters, then `[` or ` [` (the lwp).
  let j = i;
  while (j < end && j - i <= 10 && upper(b[j])) j++;
  const n = j - i;
  if (n < 4 || n > 10) return ROUTE_NEEDLES;
  if (b[j] === 0x20) j++;
  return b[j] === 0x5b ? ROUTE_DIRECT : ROUTE_NEEDLES;
}

/** True for the lines asteriskRoute skips. */
export function asteriskSkipLine(b: Uint8Array, start: number, end: number): boolean {
  return asteriskRoute(b, start, end) === ROUTE_SKIP;
}
