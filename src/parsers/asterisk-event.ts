/**
 * Pattern ids, event construction and the small address helpers shared by the Asterisk line
 * parsers. Addresses are only ever validated here through core/address.ts; names are never
 * resolved (a host name where an IP belongs makes the line yield nothing).
 */
import { normalizeIpAt } from "../core/address.js";
import type { AttackKind, InfoKind, Remote, SecurityEvent, Transport } from "../core/events.js";
import { transportFromName } from "../core/events.js";
import { ASTERISK_SECURITY_EVENTS } from "./asterisk-security-events.js";

/** `asterisk.security.<SecurityEvent name>`, one per event type of the security log channel. */
export const SECURITY_PATTERNS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.keys(ASTERISK_SECURITY_EVENTS).map((name) => [name, `asterisk.security.${name}`]),
);

/** Every pattern id the Asterisk parser emits (stable: rules and fixtures refer to them). */
export const P = {
  /** res_pjsip distributor `Request … failed for …` (all wordings, all five reasons). */
  pjsipRequestFailed: "asterisk.pjsip.request_failed",
  /** res_pjsip_session `Call (T:ip:port) to extension … rejected` (13.x `Call from '…' (T:…)` too). */
  pjsipNoExtension: "asterisk.pjsip.no_extension",
  /** res_pjsip_acl `Incoming SIP message from … did not pass ACL test`. */
  pjsipGlobalAcl: "asterisk.pjsip.acl_denied",
  /** chan_sip `Registration from '…' failed for '…' - reason`. */
  chansipRegisterFailed: "asterisk.chansip.register_failed",
  /** chan_sip `Call from '…' (ip:port) to extension … rejected`. */
  chansipNoExtension: "asterisk.chansip.no_extension",
  /** manager.c `… tried to authenticate with nonexistent user '…'`. */
  amiUnknownUser: "asterisk.ami.unknown_user",
  /** manager.c `… failed to authenticate as '…'`. */
  amiAuthFailed: "asterisk.ami.auth_failed",
  /** manager.c `… failed to pass IP ACL as '…'`. */
  amiAclDenied: "asterisk.ami.acl_denied",
  /** acl.c `SIP ACL: / SIP Peer ACL: / Manager User ACL: Rejecting '…' due to a failure to pass ACL`. */
  aclRejected: "asterisk.acl.rejected",
  /** chan_iax2 `No registration for peer '…' (from …)`. */
  iaxUnknownPeer: "asterisk.iax2.unknown_peer",
  /** chan_iax2 `Peer '…' is not dynamic (from …)`, `Host … denied access to register peer '…'`. */
  iaxRegisterDenied: "asterisk.iax2.register_denied",
  /** chan_iax2 `Host … failed MD5 authentication …`, `… did not provide proper plaintext password …`, `… failed to authenticate as …`. */
  iaxAuthFailed: "asterisk.iax2.auth_failed",
  /** chan_iax2 `Rejected connect attempt from …, who was trying to reach '…'`. */
  iaxAccessDenied: "asterisk.iax2.access_denied",
  /** chan_iax2 `Rejected connect attempt from …, request '…' does not exist`. */
  iaxNoExtension: "asterisk.iax2.no_extension",
  /** chan_iax2 `Empty registration from …`. */
  iaxEmptyRegistration: "asterisk.iax2.empty_registration",
  /** FreePBX dialplan `Log()`: `"Rejecting unknown SIP connection from …"`. */
  freepbxUnknownSip: "asterisk.freepbx.unknown_sip",
} as const;

export const ASTERISK_PATTERNS: readonly string[] = [...Object.values(SECURITY_PATTERNS), ...Object.values(P)];

/**
 * A line longer than this may be the visible part of a line cut by a syslog daemon (1 KiB in
 * RFC 3164 relays, 2 or 8 KiB in rsyslog). Cutting away the real tail could leave an address
 * planted in an earlier, attacker-controlled field looking like the real one, so such lines
 * never name an address. Real Asterisk security lines are well under 700 characters.
 */
export const MAX_TRUSTED_LINE = 900;

const MAX_CANDIDATE = 80;

export function attack(
  kind: AttackKind | InfoKind,
  remote: Remote,
  line: string,
  time: number,
  service: string,
  pattern: string,
  account: string | undefined,
  sessionId: string | undefined,
  detail: string | undefined,
): SecurityEvent {
  return {
    kind,
    remote,
    time,
    server: "asterisk",
    service,
    pattern,
    account: account || undefined,
    userAgent: undefined,
    sessionId: sessionId || undefined,
    detail,
    line,
  } as SecurityEvent;
}

export function hostile(
  candidates: string[],
  line: string,
  time: number,
  service: string,
  pattern: string,
  detail: string,
): SecurityEvent {
  return {
    kind: "hostile",
    remote: undefined,
    candidates,
    time,
    server: "asterisk",
    service,
    pattern,
    account: undefined,
    userAgent: undefined,
    sessionId: undefined,
    detail,
    line,
  };
}

/**
 * The text after each `marker` up to the first of the `stops` characters (or 80 characters), at
 * most 8 of them: the address-looking candidates of a hostile event. Only runs on hostile lines.
 */
export function candidatesAfter(line: string, marker: string, stops: string): string[] {
  const out: string[] = [];
  let i = line.indexOf(marker);
  while (i >= 0 && out.length < 8) {
    const from = i + marker.length;
    let to = from;
    while (to < line.length && to - from < MAX_CANDIDATE && !stops.includes(line.charAt(to))) to++;
    out.push(line.slice(from, to));
    i = line.indexOf(marker, from);
  }
  return out;
}

/**
 * `line.startsWith(s, pos)` for literals longer than a few characters: V8's startsWith compares
 * one character at a time, indexOf compares in bulk. A mismatch after the first character costs
 * a scan of the rest of the line, which only happens on lines that yield nothing anyway.
 */
export function at(line: string, pos: number, s: string): boolean {
  return line.charCodeAt(pos) === s.charCodeAt(0) && line.indexOf(s, pos) === pos;
}

/**
 * Index in `list` of the entry that line[.., to) ends with, preceded by `sep`; -1 if none.
 * Reads fixed text at the end of a line without searching backwards (lastIndexOf is slow in V8).
 */
export function endsWithOneOf(line: string, to: number, sep: string, list: readonly string[]): number {
  const last = line.charCodeAt(to - 1);
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    const from = to - s.length;
    if (
      s.charCodeAt(s.length - 1) === last &&
      from >= sep.length &&
      at(line, from, s) &&
      at(line, from - sep.length, sep)
    ) {
      return i;
    }
  }
  return -1;
}

/** Index of the last `code` in line[from, to), or -1: a short backward scan over an address. */
export function lastCharIn(line: string, code: number, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (line.charCodeAt(i) === code) return i;
  return -1;
}

/**
 * Index in `list` of the entry equal to line[from, to), or -1. Compares lengths first and then
 * with startsWith: cheaper than slicing the text and hashing it for a Map lookup.
 */
export function oneOf(line: string, from: number, to: number, list: readonly string[]): number {
  const n = to - from;
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    if (s.length === n && at(line, from, s)) return i;
  }
  return -1;
}

/** Occurrences of `needle` in line[from, to), stopping at 2. */
export function atMostTwo(line: string, needle: string, from = 0): number {
  const a = line.indexOf(needle, from);
  if (a < 0) return 0;
  return line.indexOf(needle, a + needle.length) < 0 ? 1 : 2;
}

/** A decimal port 0–65535 in text[from, to) (1–5 digits), else -1. */
function portIn(text: string, from: number, to: number): number {
  const n = to - from;
  if (n < 1 || n > 5) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= 65535 ? v : -1;
}

/** The host in line[from, to) as a Remote (IPv4 read in place; normalizeIpAt memoises IPv6). */
function remoteAt(
  line: string,
  from: number,
  to: number,
  port: number | undefined,
  transport: Transport | undefined,
): Remote | null {
  const ip = normalizeIpAt(line, from, to);
  return ip ? { address: ip, port, transport } : null;
}

/**
 * line[from, to) as `ip`, `ip:port`, `[v6]`, `[v6]:port` or a bare IPv6. A bare IPv6 is an
 * address without port unless `bareV6HasPort`: formats that always append `:%d` (pjsip ≤ 13.23)
 * make the last group the port, which is unambiguous given the format even though it reads
 * ambiguously. (Same rules as core/address.ts splitHostPort, plus those two Asterisk forms;
 * a property test holds them equal where both apply.)
 */
export function hostPortAt(
  line: string,
  from: number,
  to: number,
  bareV6HasPort: boolean,
  transport?: Transport,
): Remote | null {
  if (to - from < 2) return null;
  if (line.charCodeAt(from) === 91) {
    const close = line.indexOf("]", from);
    if (close < from + 2 || close >= to) return null;
    // The text between the brackets only (a nested "[…]" is not an address).
    if (line.charCodeAt(from + 1) === 91) return null;
    if (close === to - 1) return remoteAt(line, from + 1, close, undefined, transport);
    if (line.charCodeAt(close + 1) !== 58) return null;
    const port = portIn(line, close + 2, to);
    return port < 0 ? null : remoteAt(line, from + 1, close, port, transport);
  }
  const last = lastCharIn(line, 58, from, to);
  if (last < 0) return remoteAt(line, from, to, undefined, transport);
  if (line.indexOf(":", from) === last || bareV6HasPort) {
    const port = portIn(line, last + 1, to);
    return port < 0 ? null : remoteAt(line, from, last, port, transport);
  }
  return remoteAt(line, from, to, undefined, transport);
}

/** hostPortAt over a whole string. */
export function hostPort(text: string, bareV6HasPort: boolean, transport?: Transport): Remote | null {
  return hostPortAt(text, 0, text.length, bareV6HasPort, transport);
}

/** The address with nothing but an IP literal (no port), or null. */
export function bareIp(text: string): Remote | null {
  return remoteAt(text, 0, text.length, undefined, undefined);
}

/** The transport segment of a security event address (UDP, TCP, TLS, WS, WSS) in s[from, to). */
function transportSegment(s: string, from: number, to: number): Transport | undefined {
  const a = s.charCodeAt(from);
  const b = s.charCodeAt(from + 1);
  if (to - from === 2) return a === 87 && b === 83 ? "ws" : undefined;
  if (to - from !== 3) return undefined;
  const c = s.charCodeAt(from + 2);
  if (a === 85) return b === 68 && c === 80 ? "udp" : undefined;
  if (a === 84) return c === 80 && b === 67 ? "tcp" : c === 83 && b === 76 ? "tls" : undefined;
  return a === 87 && b === 83 && c === 83 ? "wss" : undefined;
}

/**
 * A security event's `IPV4/UDP/198.51.100.7/5060` value: exactly the syntax of
 * parseAsteriskAddress (`^IPV[46]/(?:(UDP|TCP|TLS|WS|WSS)/)?([0-9A-Fa-f:.]+)/(\d{1,5})$`, port
 * ≤ 65535, IP through normalizeIp), without its regex and per-call allocations; a property
 * test holds the two equal.
 */
export function securityAddress(value: string): Remote | null {
  return securityAddressAt(value, 0, value.length);
}

/** securityAddress on line[from, to), without slicing the value out first. */
export function securityAddressAt(line: string, from: number, to: number): Remote | null {
  if (line.charCodeAt(from) !== 73 || !line.startsWith("IPV", from) || line.charCodeAt(from + 4) !== 47) return null;
  const v = line.charCodeAt(from + 3);
  if (v !== 52 && v !== 54) return null;
  // The port is at most 5 digits: the last "/" is close to the end.
  const last = lastCharIn(line, 47, Math.max(from, to - 7), to);
  const port = portIn(line, last + 1, to);
  if (port < 0 || last < from + 6) return null;
  let hostStart = from + 5;
  let transport: Transport | undefined;
  const slash = line.indexOf("/", hostStart);
  if (slash < last) {
    transport = transportSegment(line, hostStart, slash);
    if (!transport) return null;
    hostStart = slash + 1;
  }
  // normalizeIp accepts only [0-9A-Fa-f:.] (dotted quad or IPv6 characters) once brackets are
  // taken off; a bracket is not part of this syntax, so refuse it before.
  if (last === hostStart || line.charCodeAt(hostStart) === 91) return null;
  return remoteAt(line, hostStart, last, port, transport);
}

/**
 * The user part of the SIP From/To header in line[from, to) as Asterisk prints it
 * (`"disp" <sip:u@h>`, `<sip:u@h>`, `sip:u@h`, `"100"sip:100@h`, `<tel:+123>`).
 * Attacker-controlled: used only as `account`.
 */
export function sipUser(line: string, from: number, to: number): string | undefined {
  // The URI is in the last <…>; a display name rarely holds another "<".
  for (let lt = line.indexOf("<", from); lt >= 0 && lt < to; lt = line.indexOf("<", lt + 1)) from = lt + 1;
  let i = line.indexOf("sip:", from);
  let skip = 4;
  if (i < 0 || i >= to) {
    i = line.indexOf("sips:", from);
    skip = 5;
  }
  if (i < 0 || i >= to) {
    i = line.indexOf("tel:", from);
    if (i < 0 || i >= to) return undefined;
    let e = i + 4;
    for (; e < to; e++) {
      const c = line.charCodeAt(e);
      if (c === 59 || c === 62) break;
    }
    return e > i + 4 ? line.slice(i + 4, e) : undefined;
  }
  const at = line.indexOf("@", i + skip);
  if (at <= i + skip || at >= to) return undefined;
  return line.slice(i + skip, at);
}

/** pjsip transport type name (`UDP`, `TCP`, …) → Transport, or undefined. */
export const transportOf = transportFromName;
