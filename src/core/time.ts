/**
 * Wall-clock → epoch conversion for log timestamps that carry no zone (Asterisk, FreeSWITCH,
 * classic syslog). Offsets come from Intl and are cached per zone and UTC hour, so a parser
 * pays one Map lookup per line.
 */

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

/** Month index (0–11) from a three-letter English abbreviation, or -1. */
export function monthIndex(abbrev: string): number {
  return MONTHS[abbrev] ?? -1;
}

const HOUR = 3_600_000;
const formatters = new Map<string, Intl.DateTimeFormat>();
const offsetCache = new Map<string, number>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Throws RangeError for an unknown zone: call it when config is loaded. */
export function assertZone(zone: string): void {
  formatterFor(zone);
}

/** The host's zone, the default for logs that carry none. */
export function hostZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Offset (ms, local minus UTC) of `zone` at the UTC instant `utcMs`. */
export function zoneOffset(zone: string, utcMs: number): number {
  if (zone === "UTC" || zone === "Etc/UTC") return 0;
  const hourKey = Math.floor(utcMs / HOUR);
  const key = zone + "@" + hourKey;
  let off = offsetCache.get(key);
  if (off === undefined) {
    const at = hourKey * HOUR;
    const p: Record<string, number> = {};
    for (const part of formatterFor(zone).formatToParts(at)) {
      if (part.type !== "literal") p[part.type] = Number(part.value);
    }
    const asUtc = Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
    off = asUtc - at;
    if (offsetCache.size > 50_000) offsetCache.clear();
    offsetCache.set(key, off);
  }
  return off;
}

/**
 * Epoch ms of a local wall-clock time in `zone`. `month` is 0-based. In a DST gap or
 * overlap the earlier offset wins, as most syslog readers do.
 */
export function localToEpoch(
  zone: string,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms = 0,
): number {
  const wall = Date.UTC(year, month, day, hour, minute, second, ms);
  const off1 = zoneOffset(zone, wall);
  const guess = wall - off1;
  const off2 = zoneOffset(zone, guess);
  return off1 === off2 ? guess : wall - off2;
}

/**
 * For timestamps with no year (`May  4 09:01:02`): the year of `now` in `zone`, or the year
 * before when that would put the line more than a day in the future (a log read in January
 * that was written in December).
 */
export function inferYear(zone: string, now: number, month: number, day: number): number {
  const local = new Date(now + zoneOffset(zone, now));
  const year = local.getUTCFullYear();
  const candidate = Date.UTC(year, month, day);
  return candidate - local.getTime() > 86_400_000 ? year - 1 : year;
}

/** Parses `±hhmm` or `±hh:mm` into an offset in ms; NaN when malformed. */
export function parseOffset(s: string): number {
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(s);
  if (!m) return s === "Z" ? 0 : Number.NaN;
  const v = (Number(m[2]) * 60 + Number(m[3])) * 60_000;
  return m[1] === "-" ? -v : v;
}
