/** Durations in config and on the command line: `500ms`, `30s`, `10m`, `1h`, `7d`, `2w`, or combined `1h30m`. */

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;

/** Milliseconds, or null when `s` is not a duration. */
export function parseDuration(s: string): number | null {
  const t = s.trim();
  if (!WHOLE.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(PART)) total += Number(m[1]) * UNIT[m[2]!]!;
  return Math.round(total);
}

/** The shortest exact rendering: 3600000 → "1h", 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const [u, v] of [
    ["w", 604_800_000],
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (rest >= v) {
      out += Math.floor(rest / v) + u;
      rest %= v;
    }
  }
  if (rest > 0) out += rest + "ms";
  return out;
}
