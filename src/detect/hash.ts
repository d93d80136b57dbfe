/**
 * Small non-cryptographic hashes. Distinct-value counting stores hashes instead of the
 * attacker-chosen strings themselves (bounded memory, no retained log lines); jitter needs a
 * deterministic pseudo-random number per (target, time) so that a replay reproduces it.
 */

function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix(h);
}

/**
 * A 53-bit hash of `s`, never 0 (0 marks an empty slot). `seed` makes collisions impossible to
 * precompute for someone who wants many account names to count as one. Two FNV-1a lanes with
 * different offsets run in one pass, each finished with murmur3's fmix32.
 */
export function hash53(s: string, seed: number): number {
  let a = (0x811c9dc5 ^ seed) >>> 0;
  let b = (0x811c9dc5 ^ seed ^ 0x5bd1e995) >>> 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  const h = (fmix(a) & 0x1fffff) * 4294967296 + fmix(b);
  return h === 0 ? 1 : h;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A deterministic number in [0, 1) for `key` at `time`. */
export function unitHash(key: string, time: number): number {
  return fnv1a(`${key}@${time}`, 0x9e3779b9) / 4294967296;
}
