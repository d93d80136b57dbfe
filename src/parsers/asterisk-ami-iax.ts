/**
 * manager.c login failures (formats.md §3.4) and chan_iax2 lines (§3.5).
 *
 * Manager lines put the address first, so nothing the client sends can stand before it.
 *
 * One failed AMI login with an unknown user is logged twice:
 *   `192.0.2.77 tried to authenticate with nonexistent user 'admin'`
 *   `192.0.2.77 failed to authenticate as 'admin'`
 * Both become events (unknown_account, auth_failed) with the same address, account, time and
 * service and no sessionId, so a detector that folds events without a sessionId by
 * (service, address, account, time) counts the attempt once; one that does not counts it twice.
 */
import type { AttackKind, SecurityEvent } from "../core/events.js";
import {
  at,
  atMostTwo,
  attack,
  bareIp,
  candidatesAfter,
  hostile,
  hostPort,
  hostPortAt,
  MAX_TRUSTED_LINE,
  P,
} from "./asterisk-event.js";

/**
 * The forms of a line, as records walked by index: `for (const [a, b] of …)` destructures
 * through the iterator protocol, which costs microseconds per line until V8 has optimised the
 * parser (the first ~100,000 lines of a `sipwarden test`).
 */
interface Form {
  readonly marker: string;
  readonly kind: AttackKind;
  readonly pattern: string;
}

const AMI: readonly Form[] = [
  { marker: " tried to authenticate with nonexistent user '", kind: "unknown_account", pattern: P.amiUnknownUser },
  { marker: " failed to authenticate as '", kind: "auth_failed", pattern: P.amiAuthFailed },
  { marker: " failed to pass IP ACL as '", kind: "acl_denied", pattern: P.amiAclDenied },
];

/** `%s tried to authenticate …` / `%s failed to authenticate as '%s'` / `%s failed to pass IP ACL as '%s'`. */
export function parseAmi(line: string, m: number, end: number, time: number): SecurityEvent | null {
  const sp = line.indexOf(" ", m);
  if (sp < 0 || sp - m > 45 || line.charCodeAt(end - 1) !== 39) return null;
  for (let i = 0; i < AMI.length; i++) {
    const { marker, kind, pattern } = AMI[i]!;
    if (line.charCodeAt(sp + 11) !== marker.charCodeAt(11) || !at(line, sp, marker)) continue;
    // ast_sockaddr_stringify_addr: no port, no brackets.
    const remote = bareIp(line.slice(m, sp));
    if (!remote) return null;
    const account = line.slice(sp + marker.length, end - 1);
    return attack(kind, remote, line, time, "AMI", pattern, account, undefined, undefined);
  }
  return null;
}

/** `marker` is the text after the address; with `md5`, the quoted account runs to a closing `' (`. */
const HOST_FORMS: readonly (Form & { readonly md5: boolean })[] = [
  { marker: "failed MD5 authentication for '", kind: "auth_failed", pattern: P.iaxAuthFailed, md5: true },
  {
    marker: "did not provide proper plaintext password for '",
    kind: "auth_failed",
    pattern: P.iaxAuthFailed,
    md5: false,
  },
  { marker: "failed to authenticate as ", kind: "auth_failed", pattern: P.iaxAuthFailed, md5: false },
  { marker: "denied access to register peer '", kind: "acl_denied", pattern: P.iaxRegisterDenied, md5: false },
];

function unquote(s: string): string {
  return s.length >= 2 && s.charCodeAt(0) === 39 && s.charCodeAt(s.length - 1) === 39 ? s.slice(1, -1) : s;
}

function iax(
  kind: AttackKind,
  remote: NonNullable<ReturnType<typeof hostPort>>,
  line: string,
  time: number,
  pattern: string,
  account: string | undefined,
  detail: string | undefined,
): SecurityEvent {
  return attack(
    kind,
    { address: remote.address, port: remote.port, transport: "udp" },
    line,
    time,
    "IAX2",
    pattern,
    account,
    undefined,
    detail,
  );
}

/** chan_iax2 `Host %s …` lines: address first. `m` is at `Host `. */
export function parseIaxHost(line: string, m: number, end: number, time: number): SecurityEvent | null {
  const a = m + 5;
  const sp = line.indexOf(" ", a);
  if (sp < 0 || sp - a > 47) return null;
  for (let i = 0; i < HOST_FORMS.length; i++) {
    const { marker, kind, pattern, md5 } = HOST_FORMS[i]!;
    if (!at(line, sp + 1, marker)) continue;
    const remote = hostPortAt(line, a, sp, false);
    if (!remote) return null;
    const accStart = sp + 1 + marker.length;
    let account: string;
    if (md5) {
      const close = line.lastIndexOf("' (", end);
      if (close < accStart || line.charCodeAt(end - 1) !== 41) return null;
      account = line.slice(accStart, close);
    } else if (marker.endsWith("'")) {
      if (line.charCodeAt(end - 1) !== 39) return null;
      account = line.slice(accStart, end - 1);
    } else {
      account = unquote(line.slice(accStart, end));
    }
    return iax(kind, remote, line, time, pattern, account, undefined);
  }
  return null;
}

/**
 * `No registration for peer '%s' (from %s)` and `Peer '%s' is not dynamic (from %s)`: the peer
 * name (the attacker's) precedes the address, so the marker after it must occur once.
 */
export function parseIaxPeer(line: string, m: number, end: number, time: number): SecurityEvent | null {
  let kind: AttackKind;
  let pattern: string;
  let nameStart: number;
  let marker: string;
  if (at(line, m, "No registration for peer '")) {
    kind = "unknown_account";
    pattern = P.iaxUnknownPeer;
    nameStart = m + 26;
    marker = "' (from ";
  } else if (line.startsWith("Peer '", m)) {
    kind = "acl_denied";
    pattern = P.iaxRegisterDenied;
    nameStart = m + 6;
    marker = "' is not dynamic (from ";
  } else {
    return null;
  }
  const f = line.lastIndexOf(marker, end);
  if (f < nameStart || line.charCodeAt(end - 1) !== 41) return null;
  if (atMostTwo(line, marker, m) > 1) {
    return hostile(candidatesAfter(line, marker, ") "), line, time, "IAX2", pattern, "ambiguous peer line");
  }
  const addrText = line.slice(f + marker.length, end - 1);
  const remote = hostPort(addrText, false);
  if (!remote) return null;
  if (end > MAX_TRUSTED_LINE) return hostile([addrText], line, time, "IAX2", pattern, "line too long to trust");
  return iax(kind, remote, line, time, pattern, line.slice(nameStart, f), undefined);
}

const REJECTED_CONNECT = "Rejected connect attempt from ";

/**
 * `Rejected connect attempt from %s, who was trying to reach '%s@%s'` (no user/ACL matched) and
 * `…, request '%s@%s' does not exist` (unknown extension). Address first after fixed text.
 */
export function parseIaxConnect(line: string, m: number, end: number, time: number): SecurityEvent | null {
  const a = m + REJECTED_CONNECT.length;
  const comma = line.indexOf(", ", a);
  if (comma < 0 || comma - a > 47) return null;
  const rest = comma + 2;
  let kind: AttackKind;
  let pattern: string;
  let target: string;
  if (at(line, rest, "who was trying to reach '") && line.charCodeAt(end - 1) === 39) {
    kind = "acl_denied";
    pattern = P.iaxAccessDenied;
    target = line.slice(rest + 25, end - 1);
  } else if (line.startsWith("request '", rest) && line.endsWith("' does not exist", end)) {
    kind = "no_extension";
    pattern = P.iaxNoExtension;
    target = line.slice(rest + 9, end - 16);
  } else {
    return null;
  }
  const remote = hostPortAt(line, a, comma, false);
  if (!remote) return null;
  const sign = target.lastIndexOf("@");
  return iax(kind, remote, line, time, pattern, sign >= 0 ? target.slice(0, sign) : target, `reach ${target}`);
}

/** `Empty registration from %s`. */
export function parseIaxEmpty(line: string, m: number, end: number, time: number): SecurityEvent | null {
  const remote = hostPortAt(line, m + 24, end, false);
  if (!remote) return null;
  return iax("bad_request", remote, line, time, P.iaxEmptyRegistration, undefined, "empty registration");
}
