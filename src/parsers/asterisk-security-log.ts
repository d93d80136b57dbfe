/**
 * The security log channel (res_security_log, formats.md §1.3): one `SecurityEvent="…",Key="…"`
 * list per line, values unescaped. The fixed IE order makes most of it readable, but AccountID,
 * SessionID (the PJSIP Call-ID) and the trailing RequestType/Challenge/Response values are the
 * attacker's text and may contain `"`, `,` and whole fake `Key="…"` pairs. So:
 *
 * - the fields before AccountID (event, EventTV, Severity, Service, EventVersion) are read in order;
 * - the line must hold exactly one `RemoteAddress="` (a planted second one, before or after the
 *   real one, makes the line hostile) and it must directly follow a strict LocalAddress;
 * - the key right after RemoteAddress must be the one this event type prints next, and the line
 *   must end in `"` (so a cut line is not trusted).
 */
import type { EventKind, SecurityEvent } from "../core/events.js";
import {
  at,
  attack,
  candidatesAfter,
  hostile,
  MAX_TRUSTED_LINE,
  oneOf,
  SECURITY_PATTERNS,
  securityAddressAt,
} from "./asterisk-event.js";
import { readEventTime } from "./asterisk-prefix.js";
import {
  ASTERISK_SECURITY_EVENTS,
  type AsteriskSecurityEventName,
  asteriskEventKind,
} from "./asterisk-security-events.js";
import type { ParseContext } from "./types.js";

/** The message prefix this module handles. */
export const SECURITY_EVENT = 'SecurityEvent="';

const OPTIONAL_COMMON = ["Module", "SessionTV"] as const;

/** The keys that may follow RemoteAddress: the first required extra IE, else the optional ones. */
const NEXT_KEYS: Readonly<Record<AsteriskSecurityEventName, readonly string[]>> = {
  FailedACL: ["Module", "ACLName", "SessionTV"],
  InvalidAccountID: OPTIONAL_COMMON,
  SessionLimit: OPTIONAL_COMMON,
  MemoryLimit: OPTIONAL_COMMON,
  LoadAverageLimit: OPTIONAL_COMMON,
  RequestNotSupported: ["RequestType"],
  RequestNotAllowed: ["RequestType"],
  AuthMethodNotAllowed: ["AuthMethod"],
  RequestBadFormat: ["RequestType"],
  SuccessfulAuth: ["UsingPassword"],
  UnexpectedAddress: ["ExpectedAddress"],
  ChallengeResponseFailed: ["Challenge"],
  InvalidPassword: ["Module", "SessionTV", "Challenge", "ReceivedChallenge", "ReceivedHash"],
  ChallengeSent: ["Challenge"],
  InvalidTransport: ["AttemptedTransport"],
};

/** Everything about one event type, looked up once by name. */
interface EventType {
  readonly name: AsteriskSecurityEventName;
  readonly pattern: string;
  readonly kind: EventKind;
  readonly nextKeys: readonly string[];
}

const NAMES = Object.keys(ASTERISK_SECURITY_EVENTS) as AsteriskSecurityEventName[];
const TYPES: readonly EventType[] = NAMES.map((name) => ({
  name,
  pattern: SECURITY_PATTERNS[name]!,
  kind: asteriskEventKind(name),
  nextKeys: NEXT_KEYS[name],
}));

const REMOTE = 'RemoteAddress="';
/** The emitters' Service values (formats.md §1.2), kept as constants. */
const SERVICES = ["PJSIP", "SIP", "AMI"];
const LOCAL = '",LocalAddress="';

function tailOk(line: string, q: number, end: number, allowed: readonly string[]): boolean {
  if (q + 1 === end) return true;
  if (line.charCodeAt(q + 1) !== 44 || line.charCodeAt(end - 1) !== 34) return false;
  const eq = line.indexOf('="', q + 2);
  return eq > 0 && eq - q <= 24 && oneOf(line, q + 2, eq, allowed) >= 0;
}

/** Value of the last `,<key>="…"` after `from`; attacker-controlled fields may precede it. */
function lastValue(line: string, key: string, from: number): string | undefined {
  const k = line.lastIndexOf(`,${key}="`);
  if (k < from) return undefined;
  const s = k + key.length + 3;
  const e = line.indexOf('"', s);
  return e < 0 ? undefined : line.slice(s, e);
}

/**
 * Parses the message at `m` (which starts with `SecurityEvent="`). `prefixTime` is used only
 * when EventTV is unreadable. Never throws.
 */
export function parseSecurityEvent(
  line: string,
  m: number,
  end: number,
  prefixTime: number,
  ctx: ParseContext,
): SecurityEvent | null {
  const p0 = m + SECURITY_EVENT.length;
  const nameEnd = line.indexOf('"', p0);
  if (nameEnd < 0) return null;
  const t = oneOf(line, p0, nameEnd, NAMES);
  if (t < 0) return null;
  const type = TYPES[t]!;
  const pattern = type.pattern;

  // The fields up to EventVersion are Asterisk's own, in a fixed order and short.
  if (!at(line, nameEnd, '",EventTV="')) return null;
  const tvEnd = line.indexOf('"', nameEnd + 11);
  if (tvEnd < 0) return null;
  let time = readEventTime(line, nameEnd + 11, tvEnd, ctx);
  if (Number.isNaN(time)) time = prefixTime;
  // Severity sits between EventTV and Service, EventVersion between Service and the first key.
  const svc = line.indexOf('",Service="', tvEnd);
  if (svc < 0 || svc - tvEnd > 28 || line.charCodeAt(tvEnd + 2) !== 83 /* S */) return null;
  const svcEnd = line.indexOf('"', svc + 11);
  if (svcEnd < 0 || svcEnd - svc > 27 || svcEnd === svc + 11) return null;
  const known = oneOf(line, svc + 11, svcEnd, SERVICES);
  const service = known >= 0 ? SERVICES[known]! : line.slice(svc + 11, svcEnd);
  const badFormat = t === REQUEST_BAD_FORMAT;
  // RequestBadFormat alone has no AccountID among its required IEs.
  const firstKey = badFormat ? '",SessionID="' : '",AccountID="';
  const id = line.indexOf(firstKey, svcEnd);
  if (id < 0 || id - svcEnd > 24 || line.charCodeAt(svcEnd + 2) !== 69 /* E */) return null;
  const idStart = id + firstKey.length;

  // From here on the attacker's text may contain anything: anchor on RemoteAddress.
  const r = line.indexOf(REMOTE, idStart);
  if (r < 0) return null;
  if (line.indexOf(REMOTE, r + REMOTE.length) >= 0) {
    return hostile(candidatesAfter(line, REMOTE, '" '), line, time, service, pattern, "more than one RemoteAddress");
  }
  // It must directly follow LocalAddress, whose value holds no quote: the quote before the
  // closing one opens it.
  const lq = line.lastIndexOf('"', r - 3);
  const l = lq - (LOCAL.length - 1);
  if (line.charCodeAt(r - 1) !== 44 || line.charCodeAt(r - 2) !== 34 || l < idStart || !at(line, l, LOCAL)) {
    return null;
  }
  const rEnd = line.indexOf('"', r + REMOTE.length);
  if (rEnd < 0) return null;
  const remote = securityAddressAt(line, r + REMOTE.length, rEnd);
  if (!remote) return null;
  if (!tailOk(line, rEnd, end, type.nextKeys)) return null;
  if (end > MAX_TRUSTED_LINE) {
    return hostile([line.slice(r + REMOTE.length, rEnd)], line, time, service, pattern, "line too long to trust");
  }

  let account: string | undefined;
  let sessionId: string;
  if (badFormat) {
    sessionId = line.slice(idStart, l);
    account = lastValue(line, "AccountID", rEnd);
  } else {
    const s = line.indexOf('",SessionID="', idStart);
    if (s < 0 || s > l) return null;
    account = line.slice(idStart, s);
    sessionId = line.slice(s + 13, l);
  }
  let kind = type.kind;
  let detail: string = type.name;
  if (t === FAILED_ACL) {
    const aclName = lastValue(line, "ACLName", rEnd);
    if (aclName) {
      kind = asteriskEventKind(type.name, aclName);
      detail = `${type.name} ${aclName}`;
    }
  }
  if (kind === "hostile") return null;
  return attack(kind, remote, line, time, service, pattern, account, sessionId, detail);
}

const FAILED_ACL = NAMES.indexOf("FailedACL");
const REQUEST_BAD_FORMAT = NAMES.indexOf("RequestBadFormat");
