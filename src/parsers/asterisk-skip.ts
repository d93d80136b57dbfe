/**
 * Byte-level pre-check for bulk reading: an Asterisk file-channel line `[date] LEVEL[…` whose
 * level is VERBOSE, DEBUG, TRACE or DTMF yields no event (the Asterisk parser never reads those
 * levels: they echo packets and dialplan arguments). Runs on raw bytes, allocates nothing.
 */

const LEVELS: readonly Uint8Array[] = ["VERBOSE[", "DEBUG[", "TRACE[", "DTMF["].map((s) => Buffer.from(s, "latin1"));

function startsWith(b: Uint8Array, i: number, end: number, word: Uint8Array): boolean {
  if (i + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return false;
  return true;
}

export function asteriskSkipLine(b: Uint8Array, start: number, end: number): boolean {
  if (b[start] !== 0x5b /* [ */) return false;
  const lim = Math.min(end, start + 48);
  let i = start + 1;
  while (i < lim && b[i] !== 0x5d /* ] */) i++;
  if (i >= lim || b[i + 1] !== 0x20) return false;
  i += 2;
  for (const w of LEVELS) if (b[i] === w[0] && startsWith(b, i, end, w)) return true;
  return false;
}
