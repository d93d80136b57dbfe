/**
 * Turns one AMI security event (formats.md §1.4), serialised as `Key: Value` lines joined with
 * `\n`, into a SecurityEvent. The AMI source produces exactly that text; a `\r` before each
 * `\n` is tolerated so a raw capture can be fed in too.
 *
 * AMI cannot be injected into the way the security log can (§1.5): no value can hold CR or
 * LF, so each header is a line of its own. A record that still carries two `RemoteAddress`
 * lines did not come from Asterisk and is reported as hostile instead of banning anybody.
 */
import type { AttackKind, InfoKind, Remote, SecurityEvent } from "../core/events.js";
import { parseOffset } from "../core/time.js";
import {
  ASTERISK_SECURITY_EVENTS,
  type AsteriskSecurityEventName,
  asteriskEventKind,
  isAsteriskSecurityEvent,
  parseAsteriskAddress,
} from "./asterisk-security-events.js";
import type { LineParser, ParseContext } from "./types.js";

const NAMES = Object.keys(ASTERISK_SECURITY_EVENTS) as AsteriskSecurityEventName[];

/** The pattern id of the event a given AMI security event type produces. */
export function amiPatternId(name: AsteriskSecurityEventName): string {
  return `asterisk.ami.${name}`;
}

/** IEs worth showing to an operator, copied into `detail` as `Key=value` in this order. */
const DETAIL_KEYS = [
  "ACLName",
  "RequestType",
  "RequestParams",
  "AuthMethod",
  "AttemptedTransport",
  "ExpectedAddress",
  "UsingPassword",
  "Module",
] as const;

/** Slots of the headers the parser reads; details follow at DETAIL + i. */
const EVENT = 0;
const EVENT_TV = 1;
const TIMESTAMP = 2;
const SERVICE = 3;
const ACCOUNT = 4;
const SESSION = 5;
const REMOTE = 6;
const DETAIL = 7;
const SLOTS = DETAIL + DETAIL_KEYS.length;
const KEYS = ["Event", "EventTV", "Timestamp", "Service", "AccountID", "SessionID", "RemoteAddress", ...DETAIL_KEYS];
/** Keys by length, so a header name is recognised in place without slicing it out. */
const BY_LENGTH: { key: string; slot: number }[][] = [];
KEYS.forEach((key, slot) => {
  BY_LENGTH[key.length] ??= [];
  BY_LENGTH[key.length]!.push({ key, slot });
});
const PATTERNS: Readonly<Record<string, string>> = Object.fromEntries(NAMES.map((n) => [n, amiPatternId(n)]));

const AMI_TS = /^(\d{1,12})(?:\.(\d{1,6}))?$/;
const SEC_USEC = /^(\d{1,12})-(\d{1,6})$/;

/** The number in `s[i, i + n)` when it is all ASCII digits, else -1. */
function num(s: string, i: number, n: number): number {
  let v = 0;
  for (let k = i; k < i + n; k++) {
    const c = s.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Epoch ms of an EventTV value, or NaN. 12+: `2024-05-14T10:21:07.112+0000` (ISO 8601 with
 * the server's offset as `±hhmm`; `±hh:mm` and `Z` are accepted too). 1.8 and 11:
 * `1715682067-112000` (`tv_sec-tv_usec`, not zero-padded). Read by hand: it runs per event.
 */
export function parseEventTv(v: string): number {
  if (v.length >= 20 && v.charCodeAt(4) === 45 && v.charCodeAt(10) === 84 /* T */) {
    const y = num(v, 0, 4);
    const mo = num(v, 5, 2);
    const d = num(v, 8, 2);
    const h = num(v, 11, 2);
    const mi = num(v, 14, 2);
    const sec = num(v, 17, 2);
    if (
      y < 0 ||
      mo < 1 ||
      mo > 12 ||
      d < 1 ||
      d > 31 ||
      h < 0 ||
      h > 23 ||
      mi < 0 ||
      mi > 59 ||
      sec < 0 ||
      sec > 60 ||
      v.charCodeAt(7) !== 45 ||
      v.charCodeAt(13) !== 58 ||
      v.charCodeAt(16) !== 58
    )
      return Number.NaN;
    let i = 19;
    let ms = 0;
    if (v.charCodeAt(i) === 46 /* . */) {
      let k = i + 1;
      let scale = 100;
      while (k < v.length && k < i + 10) {
        const c = v.charCodeAt(k) - 48;
        if (c < 0 || c > 9) break;
        ms += c * scale;
        scale /= 10;
        k++;
      }
      if (k === i + 1) return Number.NaN;
      ms = Math.floor(ms);
      i = k;
    }
    const off = parseOffset(v.slice(i));
    if (Number.isNaN(off)) return Number.NaN;
    return Date.UTC(y, mo - 1, d, h, mi, sec, ms) - off;
  }
  const s = SEC_USEC.exec(v);
  if (s) return Number(s[1]) * 1000 + Math.floor(Number(s[2]) / 1000);
  return Number.NaN;
}

function parseAmiTimestamp(v: string): number {
  const m = AMI_TS.exec(v);
  if (!m) return Number.NaN;
  return Number(m[1]) * 1000 + (m[2] ? Math.floor(Number(m[2].padEnd(6, "0")) / 1000) : 0);
}

/** Recent RemoteAddress values: one attacker sends bursts, so most lookups hit. Bounded. */
const remoteCache = new Map<string, Remote | null>();
const REMOTE_CACHE_MAX = 4096;

function remoteOf(value: string): Remote | null {
  let r = remoteCache.get(value);
  if (r !== undefined) return r;
  const a = parseAsteriskAddress(value);
  r = a
    ? Object.freeze(
        a.transport ? { address: a.ip, port: a.port, transport: a.transport } : { address: a.ip, port: a.port },
      )
    : null;
  if (remoteCache.size >= REMOTE_CACHE_MAX) remoteCache.clear();
  remoteCache.set(value, r);
  return r;
}

/**
 * One pass over the lines, keeping the first value of each header the event needs in `vals`.
 * Returns how many `Event` and `RemoteAddress` lines there were (times 1 and 1000), since a
 * repeat of either means the record did not come from Asterisk.
 */
function scan(text: string, vals: (string | undefined)[]): number {
  let counts = 0;
  let start = 0;
  const n = text.length;
  // Position of the next ": "; reused while ahead, so lines without one stay linear.
  let sep = -1;
  while (start < n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    const next = end + 1;
    if (end > start && text.charCodeAt(end - 1) === 13) end--;
    if (sep < start) {
      sep = text.indexOf(": ", start);
      if (sep < 0) sep = n;
    }
    let keyEnd: number;
    let valueStart: number;
    if (sep < end) {
      keyEnd = sep;
      valueStart = sep + 2;
    } else if (end > start && text.charCodeAt(end - 1) === 58 /* `Key:` with its space trimmed */) {
      keyEnd = end - 1;
      valueStart = end;
    } else {
      start = next;
      continue;
    }
    const cands = BY_LENGTH[keyEnd - start];
    if (cands !== undefined) {
      for (const c of cands) {
        if (!text.startsWith(c.key, start)) continue;
        if (c.slot === EVENT) counts += 1;
        else if (c.slot === REMOTE) counts += 1000;
        if (vals[c.slot] === undefined) vals[c.slot] = text.slice(valueStart, end);
        break;
      }
    }
    start = next;
  }
  return counts;
}

function detailOf(vals: readonly (string | undefined)[]): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < DETAIL_KEYS.length; i++) {
    const v = vals[DETAIL + i];
    if (v === undefined || v === "") continue;
    const part = DETAIL_KEYS[i] + "=" + v;
    out = out === undefined ? part : out + ", " + part;
  }
  return out;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === "" ? undefined : v);

/**
 * Parses one serialised AMI security event. Not a security event (another AMI event, a
 * response, garbage), or one without a strict `RemoteAddress`: null. The time comes from
 * EventTV, then the AMI `Timestamp`, then `ctx.now` (the caller's receive time) as a last
 * resort, because Asterisk always sends EventTV and dropping an attack for a bad clock field
 * would be worse than a slightly wrong time.
 */
export function parseAmiEvent(text: string, ctx: ParseContext): SecurityEvent | null {
  if (!text.startsWith("Event: ")) return null;
  const vals: (string | undefined)[] = new Array(SLOTS);
  const counts = scan(text, vals);
  const name = vals[EVENT]!;
  if (counts % 1000 !== 1 || !isAsteriskSecurityEvent(name)) return null;
  const tv = vals[EVENT_TV];
  let time = tv !== undefined ? parseEventTv(tv) : Number.NaN;
  const ts = vals[TIMESTAMP];
  if (Number.isNaN(time) && ts !== undefined) time = parseAmiTimestamp(ts);
  if (Number.isNaN(time)) time = ctx.now;
  const service = vals[SERVICE] || "AMI";
  const pattern = PATTERNS[name]!;
  const account = nonEmpty(vals[ACCOUNT]);
  const sessionId = nonEmpty(vals[SESSION]);
  const detail = detailOf(vals);
  if (counts >= 2000) {
    const candidates: string[] = [];
    for (const m of text.matchAll(/^RemoteAddress: ?(.*?)\r?$/gm)) candidates.push(m[1]!);
    return {
      time,
      server: "asterisk",
      service,
      pattern,
      account,
      sessionId,
      detail,
      line: text,
      kind: "hostile",
      candidates,
    };
  }
  const raw = vals[REMOTE];
  const remote = raw === undefined ? null : remoteOf(raw);
  if (remote === null) return null;
  const kind = asteriskEventKind(name, vals[DETAIL]) as AttackKind | InfoKind;
  // One object shape for every event (absent fields are undefined), which keeps callers monomorphic.
  return { time, server: "asterisk", service, pattern, account, sessionId, detail, line: text, kind, remote };
}

/**
 * The AMI security-event parser. Its input is a whole event (many lines), so it is used by
 * the AMI source rather than by the per-line log classifier.
 */
export const amiParser: LineParser = {
  server: "asterisk",
  patterns: NAMES.map(amiPatternId),
  needles: ["Event: "],
  parse: parseAmiEvent,
};

/** Key under which two reports of one attempt agree: the SessionID (Call-ID) and the peer address. */
export function attemptKey(e: SecurityEvent): string | null {
  if (e.kind === "hostile" || e.sessionId === undefined) return null;
  return `${e.sessionId}|${e.remote.address}`;
}

/**
 * True when `a` and `b` report the same attempt: PJSIP sends InvalidAccountID and then
 * ChallengeSent or ChallengeResponseFailed for one request to an unknown user (formats.md
 * §1.5), with the same SessionID and RemoteAddress, within the same second.
 */
export function isSameAttempt(a: SecurityEvent, b: SecurityEvent, windowMs = 1000): boolean {
  const ka = attemptKey(a);
  return ka !== null && ka === attemptKey(b) && Math.abs(a.time - b.time) < windowMs;
}
