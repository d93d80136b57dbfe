/**
 * SIP lines of the Asterisk full/messages log (formats.md §3.2, §3.3): res_pjsip's distributor and
 * session, chan_sip, acl.c, res_pjsip_acl, and the FreePBX dialplan line.
 *
 * Each message is read around the one field Asterisk itself prints (the source address); the
 * From/To headers, Call-IDs, user names and dialled extensions around it are the attacker's
 * text. Where such text precedes or follows the address, the fixed marker that delimits the
 * address must occur exactly once, otherwise the line is hostile.
 */
import type { AttackKind, SecurityEvent } from "../core/events.js";
import {
  at,
  atMostTwo,
  attack,
  bareIp,
  candidatesAfter,
  endsWithOneOf,
  hostile,
  hostPort,
  hostPortAt,
  lastCharIn,
  MAX_TRUSTED_LINE,
  oneOf,
  P,
  sipUser,
  transportOf,
} from "./asterisk-event.js";

/** pjsip_distributor.c log_failed_request() reasons, and what each means. */
const PJSIP_REASONS = [
  "No matching endpoint found",
  "Failed to authenticate",
  "Error to authenticate",
  "Not match Endpoint ACL",
  "Not match Endpoint Contact ACL",
] as const;
const PJSIP_KINDS: readonly AttackKind[] = [
  "unknown_account",
  "auth_failed",
  "auth_failed",
  "acl_denied",
  "acl_denied",
];

/**
 * chan_sip handle_request_register() reasons. `null`: a known reason that says nothing about the
 * peer (a server-side RTP failure, an unclassified code), so it must not count against anyone.
 * "ACL error (permit/deny)" is the pre-1.8 wording of "Device does not match ACL".
 */
const CHANSIP_REASONS = [
  "Wrong password",
  "Username/auth name mismatch",
  "No matching peer found",
  "Not a local domain",
  "Peer is not supposed to register",
  "Device does not match ACL",
  "ACL error (permit/deny)",
  "Device not configured to use this transport type",
  "RTP initialization failed",
  "Unknown failure",
] as const;
const CHANSIP_KINDS: readonly (AttackKind | null)[] = [
  "auth_failed",
  "auth_failed",
  "unknown_account",
  "acl_denied",
  "acl_denied",
  "acl_denied",
  "acl_denied",
  "bad_request",
  null,
  null,
];

/** SIP methods, so that the common `METHOD: reason` details are constants, not per-line strings. */
const METHODS = [
  "REGISTER",
  "INVITE",
  "OPTIONS",
  "SUBSCRIBE",
  "NOTIFY",
  "MESSAGE",
  "PUBLISH",
  "REFER",
  "INFO",
  "BYE",
  "ACK",
  "CANCEL",
  "UPDATE",
  "PRACK",
];
const DETAILS: readonly string[] = METHODS.flatMap((m) => PJSIP_REASONS.map((r) => `${m}: ${r}`));

const FAILED_FOR = " failed for '";
const CALLID = "' (callid: ";

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Index of the first of the digits that end at `to` (`to` itself when there are none). */
function digitsBefore(line: string, to: number): number {
  let i = to;
  while (i > 0 && isDigit(line.charCodeAt(i - 1))) i--;
  return i;
}

/**
 * Start of ` after %u tries in %.3f ms` when line[.., end) ends with exactly that, else -1
 * (read backwards, without a regex or lastIndexOf: both are slow in V8 on a cold start).
 */
export function triesStart(line: string, end: number): number {
  const ms = end - 3;
  if (ms < 0 || line.charCodeAt(ms) !== 32 || line.charCodeAt(ms + 1) !== 109 || line.charCodeAt(ms + 2) !== 115) {
    return -1;
  }
  let j = digitsBefore(line, ms);
  if (j === ms) return -1;
  if (line.charCodeAt(j - 1) === 46) {
    const k = digitsBefore(line, j - 1);
    if (k === j - 1) return -1;
    j = k;
  }
  const t = j - TRIES_IN.length;
  if (t < 0 || !line.startsWith(TRIES_IN, t)) return -1;
  const d = digitsBefore(line, t);
  const a = d - AFTER.length;
  return d < t && a >= 0 && line.startsWith(AFTER, a) ? a : -1;
}
const TRIES_IN = " tries in ";
const AFTER = " after ";

/**
 * res_pjsip `Request '%s' from '%s' failed for '%s' (callid: %s) - %s` in its three wordings
 * (12.0–13.9 `Request from '…'`, 13.10–16.0 `'%s:%d'`, 13.24+ `pj_sockaddr_print`). `m` is at `Request `.
 */
export function parsePjsipRequest(line: string, m: number, end: number, time: number): SecurityEvent | null {
  let fromStart: number;
  let methodStart = -1;
  let methodEnd = -1;
  const p = m + 8;
  if (line.startsWith("from '", p)) {
    fromStart = p + 6;
  } else if (line.charCodeAt(p) === 39) {
    const q = line.indexOf("' from '", p + 1);
    if (q < 0 || q - p > 33) return null;
    methodStart = p + 1;
    methodEnd = q;
    fromStart = q + 8;
  } else {
    return null;
  }
  // The reason is Asterisk's fixed text at the very end, after ") - "; the Call-ID before it may
  // hold anything, including ") - " and reason texts, so it is read from the end.
  let reasonEnd = end;
  if (line.charCodeAt(end - 1) === 115 /* s */ && line.charCodeAt(end - 3) === 32) {
    // " after %u tries in %.3f ms"
    const after = triesStart(line, end);
    if (after < 0) return null;
    reasonEnd = after;
  }
  const r = endsWithOneOf(line, reasonEnd, ") - ", PJSIP_REASONS);
  if (r < 0) return null;
  const reason = PJSIP_REASONS[r]!;
  const dash = reasonEnd - reason.length - 4;
  if (dash < fromStart) return null;

  const f = line.indexOf(FAILED_FOR, fromStart);
  if (f < 0 || f > dash) return null;
  if (line.indexOf(FAILED_FOR, f + FAILED_FOR.length) >= 0) {
    return hostile(candidatesAfter(line, FAILED_FOR, "') "), line, time, "PJSIP", P.pjsipRequestFailed, reason);
  }
  const addrStart = f + FAILED_FOR.length;
  const addrEnd = line.indexOf("'", addrStart);
  if (addrEnd < 0 || !at(line, addrEnd, CALLID) || addrEnd + CALLID.length > dash) return null;
  if (line.charCodeAt(f - 1) !== 39) return null;
  const remote = hostPortAt(line, addrStart, addrEnd, true);
  if (!remote || remote.port === undefined) return null;
  if (end > MAX_TRUSTED_LINE) {
    return hostile(
      [line.slice(addrStart, addrEnd)],
      line,
      time,
      "PJSIP",
      P.pjsipRequestFailed,
      "line too long to trust",
    );
  }
  const account = sipUser(line, fromStart, f - 1);
  const callId = line.slice(addrEnd + CALLID.length, dash);
  let detail: string = reason;
  if (methodStart >= 0) {
    const mi = oneOf(line, methodStart, methodEnd, METHODS);
    detail = mi >= 0 ? DETAILS[mi * PJSIP_REASONS.length + r]! : `${line.slice(methodStart, methodEnd)}: ${reason}`;
  }
  return attack(PJSIP_KINDS[r]!, remote, line, time, "PJSIP", P.pjsipRequestFailed, account, callId, detail);
}

/** chan_sip `Registration from '%s' failed for '%s' - %s`. `m` is at `Registration from '`. */
export function parseChansipRegister(line: string, m: number, end: number, time: number): SecurityEvent | null {
  const toStart = m + 19;
  // Only Asterisk's fixed reason follows the address: read it from the end.
  const r = endsWithOneOf(line, end, "' - ", CHANSIP_REASONS);
  const kind = r < 0 ? null : CHANSIP_KINDS[r]!;
  if (!kind) return null;
  const reason = CHANSIP_REASONS[r]!;
  const sep = end - reason.length - 4;
  const f = line.indexOf(FAILED_FOR, toStart);
  if (f < 0 || f >= sep || line.charCodeAt(f - 1) !== 39) return null;
  if (line.indexOf(FAILED_FOR, f + FAILED_FOR.length) >= 0) {
    return hostile(candidatesAfter(line, FAILED_FOR, "') "), line, time, "SIP", P.chansipRegisterFailed, reason);
  }
  // ast_sockaddr_stringify: ip:port or [v6]:port (1.8 and older: ip only).
  const remote = hostPortAt(line, f + FAILED_FOR.length, sep, false);
  if (!remote) return null;
  if (end > MAX_TRUSTED_LINE) {
    const addrText = line.slice(f + FAILED_FOR.length, sep);
    return hostile([addrText], line, time, "SIP", P.chansipRegisterFailed, "line too long to trust");
  }
  const account = sipUser(line, toStart, f - 1);
  return attack(kind, remote, line, time, "SIP", P.chansipRegisterFailed, account, undefined, reason);
}

const TO_EXT = ") to extension '";
const REJECTED = "' rejected because extension not found in context '";

/** Which module wrote the line, from its location part. */
export type Module = "chan_sip" | "pjsip" | "other";

/**
 * `Call from '%s' (%s) to extension '%s' rejected because extension not found in context '%s'.`
 * (chan_sip; res_pjsip_session 13.x with `T:addr`) and res_pjsip_session 16+ ` %s: Call (%s:%s) to …`.
 * The caller name before the address and the extension after it may be the attacker's text.
 */
export function parseNoExtension(
  line: string,
  m: number,
  end: number,
  time: number,
  module: Module,
): SecurityEvent | null {
  let h = m;
  while (line.charCodeAt(h) === 32) h++;
  const toExt = line.indexOf(TO_EXT, h);
  if (toExt < 0) return null;
  const callFrom = at(line, h, "Call from '");
  if (!callFrom && !line.startsWith("Call (", h)) {
    // 16+: `<session name>: Call (…)`; the name is an endpoint id or channel name, no spaces.
    const c = line.indexOf(": Call (", h);
    if (c < 0 || c > toExt || line.lastIndexOf(" ", c) >= h) return null;
  }
  const open = lastCharIn(line, 40, h, toExt);
  if (open < h || line.charCodeAt(open - 1) !== 32) return null;
  const rej = line.indexOf(REJECTED, toExt + TO_EXT.length);
  if (
    rej < 0 ||
    line.charCodeAt(end - 1) !== 46 ||
    line.charCodeAt(end - 2) !== 39 ||
    end - 2 < rej + REJECTED.length
  ) {
    return null;
  }
  let addrStart = open + 1;
  const colon = line.indexOf(":", addrStart);
  const transport = colon > addrStart && colon <= addrStart + 4 ? transportOf(line.slice(addrStart, colon)) : undefined;
  if (transport) addrStart = colon + 1;
  const pjsip = module === "pjsip" || (module === "other" && (transport !== undefined || !callFrom));
  const service = pjsip ? "PJSIP" : "SIP";
  const pattern = pjsip ? P.pjsipNoExtension : P.chansipNoExtension;
  if (atMostTwo(line, TO_EXT, m) > 1 || atMostTwo(line, REJECTED, m) > 1) {
    return hostile(candidatesAfter(line, " (", ") "), line, time, service, pattern, "ambiguous call line");
  }
  const remote = hostPortAt(line, addrStart, toExt, true, transport);
  if (!remote) return null;
  if (end > MAX_TRUSTED_LINE) {
    return hostile([line.slice(addrStart, toExt)], line, time, service, pattern, "line too long to trust");
  }
  const exten = line.slice(toExt + TO_EXT.length, rej);
  const context = line.slice(rej + REJECTED.length, end - 2);
  return attack("no_extension", remote, line, time, service, pattern, exten, undefined, `context ${context}`);
}

/**
 * acl.c `%sRejecting '%s' due to a failure to pass ACL '%s'`. Only the prefixes whose address is
 * the packet's or connection's source are trusted. "SIP Contact ACL: " (pjsip) checks the
 * addresses in the Contact header, which the attacker writes: such lines yield nothing (the
 * distributor's "Not match Endpoint Contact ACL" line carries the real source).
 */
const ACL_PREFIXES: readonly { readonly prefix: string; readonly service: string }[] = [
  { prefix: "SIP ACL: ", service: "PJSIP" },
  { prefix: "SIP Peer ACL: ", service: "SIP" },
  { prefix: "Manager User ACL: ", service: "AMI" },
];
const ACL_REJECTING = "Rejecting '";
const ACL_FAILURE = "' due to a failure to pass ACL '";

export function parseAclRejected(line: string, m: number, end: number, time: number): SecurityEvent | null {
  // Indexed, not destructured by for…of (see AMI in asterisk-ami-iax.ts).
  for (let i = 0; i < ACL_PREFIXES.length; i++) {
    const { prefix, service } = ACL_PREFIXES[i]!;
    if (!line.startsWith(prefix, m)) continue;
    const a = m + prefix.length;
    if (!line.startsWith(ACL_REJECTING, a)) return null;
    const ipStart = a + ACL_REJECTING.length;
    const q = line.indexOf("'", ipStart);
    if (q < 0 || !at(line, q, ACL_FAILURE) || line.charCodeAt(end - 1) !== 39) return null;
    const remote = bareIp(line.slice(ipStart, q));
    if (!remote) return null;
    const acl = line.slice(q + ACL_FAILURE.length, end - 1);
    return attack("acl_denied", remote, line, time, service, P.aclRejected, undefined, undefined, `${prefix}${acl}`);
  }
  return null;
}

const INCOMING = "Incoming SIP message from ";
const NOT_PASS = " did not pass ACL test";

/** res_pjsip_acl.c `Incoming SIP message from %s did not pass ACL test` (ip:port). */
export function parsePjsipAcl(line: string, m: number, end: number, time: number): SecurityEvent | null {
  const stop = end - NOT_PASS.length;
  if (stop <= m + INCOMING.length || !at(line, stop, NOT_PASS)) return null;
  const remote = hostPortAt(line, m + INCOMING.length, stop, false);
  if (!remote) return null;
  return attack("acl_denied", remote, line, time, "PJSIP", P.pjsipGlobalAcl, undefined, undefined, "global ACL");
}

const FREEPBX = '"Rejecting unknown SIP connection from ';

/**
 * FreePBX from-sip-external: `Log(WARNING,"Rejecting unknown SIP connection from ${CHANNEL(recvip)}")`,
 * logged with the location `Ext. <exten>`. The exten is the caller's, so only the fixed text at
 * the end of the line is read, and it must occur once.
 */
export function parseFreepbx(line: string, locStart: number, end: number, time: number): SecurityEvent | null {
  const i = line.indexOf(FREEPBX, locStart);
  if (i < 0 || line.charCodeAt(i - 1) !== 32 || line.charCodeAt(i - 2) !== 58 || line.charCodeAt(end - 1) !== 34) {
    return null;
  }
  if (atMostTwo(line, FREEPBX, locStart) > 1) {
    return hostile(candidatesAfter(line, FREEPBX, '" '), line, time, "SIP", P.freepbxUnknownSip, "repeated message");
  }
  const addrText = line.slice(i + FREEPBX.length, end - 1);
  const remote = hostPort(addrText, false);
  if (!remote) return null;
  if (end > MAX_TRUSTED_LINE)
    return hostile([addrText], line, time, "SIP", P.freepbxUnknownSip, "line too long to trust");
  return attack(
    "acl_denied",
    remote,
    line,
    time,
    "SIP",
    P.freepbxUnknownSip,
    undefined,
    undefined,
    "FreePBX: unknown SIP connection",
  );
}
