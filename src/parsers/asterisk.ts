/**
 * Asterisk log lines → SecurityEvent: the security log channel (all 15 event types, Asterisk 11
 * and 12+ renderings) and the full/messages log (res_pjsip, res_pjsip_session, chan_sip, manager,
 * chan_iax2, acl.c, res_pjsip_acl, FreePBX), in the file, syslog and journald prefixes.
 *
 * The work is split by what it reads: asterisk-prefix.ts (prefix and timestamps),
 * asterisk-security-log.ts, asterisk-sip.ts, asterisk-ami-iax.ts; asterisk-event.ts holds the
 * pattern ids. Pure and synchronous; an ordinary line is rejected after a few charCodeAt calls.
 *
 * Trust rules (see DESIGN.md "Parser"):
 * - an address is read only from the position Asterisk itself prints it in;
 * - where the attacker's text (From, To, Call-ID, user names, extensions) surrounds that position,
 *   the delimiting marker must occur exactly once, and the line must not be so long that a
 *   syslog daemon could have cut off its real end; otherwise the line yields a `hostile` event;
 * - VERBOSE, DEBUG, TRACE and DTMF lines are never read (they echo packets and dialplan
 *   arguments), nor are dialplan `Log()` lines except FreePBX's fixed one;
 * - a host name where an IP literal belongs yields nothing; nothing is ever resolved.
 */
import type { SecurityEvent } from "../core/events.js";
import { parseAmi, parseIaxConnect, parseIaxEmpty, parseIaxHost, parseIaxPeer } from "./asterisk-ami-iax.js";
import { ASTERISK_PATTERNS, at } from "./asterisk-event.js";
import { type AsteriskPrefix, readPrefix } from "./asterisk-prefix.js";
import { parseSecurityEvent, SECURITY_EVENT } from "./asterisk-security-log.js";
import {
  type Module,
  parseAclRejected,
  parseChansipRegister,
  parseFreepbx,
  parseNoExtension,
  parsePjsipAcl,
  parsePjsipRequest,
} from "./asterisk-sip.js";
import type { LineParser, ParseContext } from "./types.js";

/**
 * Every line that can yield an event contains one of these (checked by the fixture runner);
 * bulk readers skip the other lines without decoding them.
 */
export const ASTERISK_NEEDLES: readonly string[] = [
  'SecurityEvent="',
  " failed for '",
  "extension not found",
  "authenticat",
  "ACL",
  "registration",
  "is not dynamic",
  "denied access",
  "plaintext password",
  "Rejected connect attempt",
  "Rejecting unknown SIP",
];

// Reused for every line: parse() is synchronous and not re-entrant.
const pre: AsteriskPrefix = { time: 0, locStart: 0, locEnd: 0, msgStart: 0, end: 0 };

function moduleOf(line: string, locStart: number): Module {
  if (line.startsWith("chan_sip", locStart)) return "chan_sip";
  if (line.startsWith("res_pjsip", locStart)) return "pjsip";
  return "other";
}

function dispatch(line: string, ctx: ParseContext): SecurityEvent | null {
  const m = pre.msgStart;
  const end = pre.end;
  const time = pre.time;
  if (end - m < 10) return null;
  // Dialplan Log() writes `Ext. <exten>` as its location and any text as its message.
  if (line.charCodeAt(pre.locStart) === 69 && line.startsWith("Ext. ", pre.locStart)) {
    return parseFreepbx(line, pre.locStart, end, time);
  }
  switch (line.charCodeAt(m)) {
    case 83: // S
      if (at(line, m, SECURITY_EVENT)) return parseSecurityEvent(line, m, end, time, ctx);
      if (line.startsWith("SIP ", m)) return parseAclRejected(line, m, end, time);
      return null;
    case 82: // R
      if (line.startsWith("Request ", m)) return parsePjsipRequest(line, m, end, time);
      if (at(line, m, "Registration from '")) return parseChansipRegister(line, m, end, time);
      if (at(line, m, "Rejected connect attempt from ")) return parseIaxConnect(line, m, end, time);
      return null;
    case 67: // C
    case 32: // 16+ res_pjsip_session: ast_trace_log() adds a leading space
      return parseNoExtension(line, m, end, time, moduleOf(line, pre.locStart));
    case 77: // M
      return at(line, m, "Manager User ACL: ") ? parseAclRejected(line, m, end, time) : null;
    case 72: // H
      return line.startsWith("Host ", m) ? parseIaxHost(line, m, end, time) : null;
    case 78: // N
    case 80: // P
      return parseIaxPeer(line, m, end, time);
    case 69: // E
      if (at(line, m, "Empty registration from ")) return parseIaxEmpty(line, m, end, time);
      break;
    case 73: // I
      if (at(line, m, "Incoming SIP message from ")) return parsePjsipAcl(line, m, end, time);
      break;
  }
  // `<session name>: Call (…)` without the leading space, else manager's `<ip> failed …`.
  const sp = line.indexOf(" ", m);
  if (sp > m && line.startsWith(": Call (", sp - 1)) {
    return parseNoExtension(line, m, end, time, moduleOf(line, pre.locStart));
  }
  return parseAmi(line, m, end, time);
}

/** The Asterisk line parser. */
export const asteriskParser: LineParser = {
  server: "asterisk",
  patterns: ASTERISK_PATTERNS,
  needles: ASTERISK_NEEDLES,
  parse(line: string, ctx: ParseContext): SecurityEvent | null {
    if (line.length < 24) return null;
    try {
      if (!readPrefix(line, ctx, pre)) return null;
      return dispatch(line, ctx);
    } catch {
      // Defensive: the parsers only index strings, but a parser must never throw.
      return null;
    }
  },
};
