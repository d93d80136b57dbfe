/**
 * String helpers shared by the stages that keep strings for long (detector tables, caches).
 */

/**
 * V8 keeps regex captures and slices as views into the parent string. A key taken from a log
 * line would pin the whole line for as long as it is kept; copy it before storing.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : (" " + s).slice(1);
}

/** FNV-1a over UTF-16 code units (32 bits, unsigned): a table index hash, not a defence. */
export function keyHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
