/**
 * FreeSWITCH mod_logfile lines (formats.md §5), also behind a syslog/journald prefix.
 *
 * Line prefix: `[<uuid> ]YYYY-MM-DD hh:mm:ss.µµµµµµ[ 97.53%] [LEVEL] file.c:NNN message`. The idle-CPU
 * field exists from v1.10.7; `<uuid> ` only on session-bound lines. Also accepted: the variant
 * in fail2ban's corpus (gh-2193) with no year, `[WARN]`, a `[SOFIA]` tag and `[file.c:NNN]`, and
 * either form after a syslog prefix (`… freeswitch[122921]: 2016-09-25 18:57:58.150982 [WARNING] …`,
 * where the inner FreeSWITCH time is used; without an inner time the syslog time is used).
 * Times carry no zone: they are local time in `ctx.zone`. Line numbers are never matched.
 *
 * | pattern id                      | message (must end the line)                                           | kind |
 * |---------------------------------|-----------------------------------------------------------------------|------|
 * | `freeswitch.sofia.auth_failure` | `SIP auth failure (REGISTER\|INVITE) on sofia profile 'p' for [u@d] from ip X` | auth_failed |
 * | `freeswitch.sofia.auth_challenge` | `SIP auth challenge (…) on sofia profile 'p' for [u@d] from ip X`   | challenge_sent |
 * | `freeswitch.sofia.user_not_found` | `Can't find user [u@d] from X`                                      | unknown_account |
 * | `freeswitch.sofia.register_acl` | `IP X Rejected by register acl "name"`                                | acl_denied |
 * | `freeswitch.sofia.acl`          | `IP X Rejected by acl "name"`                                         | acl_denied |
 * | `freeswitch.sofia.user_acl`     | `IP X Rejected by user acl [list] and no proxy acl present`           | acl_denied |
 *
 * Trust: `[u@d]` is attacker text (To user and host, or the Authorization username and realm)
 * printed before the trusted `from ip X`, so the address is taken from the end of the line, and
 * a second ` from ip ` / `] from ` means a planted copy: the line is `hostile`. ACL lines carry
 * only the address and configuration text. The account is the part of `[u@d]` before the last
 * `@` (for INVITE that is the dialled number).
 *
 * Deliberately not events:
 * - the two continuation lines of "Can't find user" (no prefix);
 * - `SIP auth failure (REGISTER) due to user-agent-filter …` and `… due to reaching max allowed
 *   registrations …`: they carry no address (correlate with the ESL `sofia::register_failure`);
 * - `IP X Rejected by acl "…". Falling back to Digest auth.` (DEBUG): the request is not refused.
 */
import { normalizeIp } from "../core/address.js";
import type {
  AttackEvent,
  AttackKind,
  HostileEvent,
  InfoEvent,
  InfoKind,
  Remote,
  SecurityEvent,
} from "../core/events.js";
import { inferYear, localToEpoch } from "../core/time.js";
import { splitSyslogPrefix } from "./syslog-prefix.js";
import type { LineParser, ParseContext } from "./types.js";

export const FREESWITCH_PATTERNS = {
  authFailure: "freeswitch.sofia.auth_failure",
  authChallenge: "freeswitch.sofia.auth_challenge",
  userNotFound: "freeswitch.sofia.user_not_found",
  registerAcl: "freeswitch.sofia.register_acl",
  acl: "freeswitch.sofia.acl",
  userAcl: "freeswitch.sofia.user_acl",
} as const;

const SIP_AUTH = "SIP auth ";
const CANT_FIND = "Can't find user [";
const REJECTED = " Rejected by ";
const FROM_IP = " from ip ";
const FROM = "] from ";

/**
 * The FreeSWITCH prefix. Groups: 1 year (optional), 2 month, 3 day, 4–6 h:m:s, 7 fraction.
 * The date is optional only after a syslog prefix (checked by the caller).
 */
const PREFIX =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} )?(?:(?:(\d{4})-)?(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: \d{1,3}\.\d{1,2}%)? )?\[(?:CONSOLE|ALERT|CRIT|ERR|WARNING|WARN|NOTICE|INFO|DEBUG)\] (?:\[[A-Z_]{1,16}\] )?(?:[\w.-]{1,64}\.c:\d{1,6}|\[[\w.-]{1,64}\.c:\d{1,6}\]) /;

const AUTH =
  /^SIP auth (failure|challenge) \((REGISTER|INVITE)\) on sofia profile '([^']*)' for \[([\s\S]*)\] from ip (\S+)$/;
const NOT_FOUND = /^Can't find user \[([\s\S]*)\] from (\S+)$/;
const REGISTER_ACL = /^IP (\S+) Rejected by register acl(?: "([^"]*)")?$/;
const ACL = /^IP (\S+) Rejected by acl "([^"]*)"$/;
const USER_ACL = /^IP (\S+) Rejected by user acl \[([^\]]*)\] and no proxy acl present$/;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Candidates reported for one hostile line. */
const MAX_CANDIDATES = 8;

interface Frame {
  readonly time: number;
  readonly message: string;
  readonly line: string;
}

function count(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

function frame(line: string, ctx: ParseContext): Frame | null {
  let text = line;
  let fallback: number | null = null;
  if (!PREFIX.test(text)) {
    // Only a syslog/journald wrapper may come before the FreeSWITCH prefix.
    const sys = splitSyslogPrefix(line, ctx);
    if (!sys) return null;
    text = sys.message;
    fallback = sys.time;
  }
  const m = PREFIX.exec(text);
  if (!m) return null;
  let time: number;
  if (m[2] === undefined) {
    if (fallback === null) return null;
    time = fallback;
  } else {
    const mo = Number(m[2]) - 1;
    const d = Number(m[3]);
    const h = Number(m[4]);
    const mi = Number(m[5]);
    const s = Number(m[6]);
    if (mo < 0 || mo > 11 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
    const y = m[1] === undefined ? inferYear(ctx.zone, ctx.now, mo, d) : Number(m[1]);
    const ms = m[7] === undefined ? 0 : Math.floor(Number((m[7] + "00").slice(0, 3)));
    time = localToEpoch(ctx.zone, y, mo, d, h, mi, s, ms);
  }
  return { time, message: text.slice(m[0].length), line };
}

/** The user part of `user@host` (the host may be a bracketed IPv6, the user may hold an `@`). */
function accountOf(userAtHost: string): string | undefined {
  const at = userAtHost.lastIndexOf("@");
  const user = at < 0 ? userAtHost : userAtHost.slice(0, at);
  return user === "" ? undefined : user;
}

function event(
  f: Frame,
  kind: AttackKind | InfoKind,
  pattern: string,
  address: string,
  account: string | undefined,
  detail: string | undefined,
): SecurityEvent {
  const remote: Remote = { address };
  const ev: Mutable<AttackEvent | InfoEvent> = {
    kind,
    time: f.time,
    server: "freeswitch",
    service: "sofia",
    pattern,
    line: f.line,
    remote,
  };
  if (account !== undefined) ev.account = account;
  if (detail !== undefined) ev.detail = detail;
  return ev;
}

function hostile(f: Frame, pattern: string, marker: string): HostileEvent {
  const msg = f.message;
  // The first few occurrences and the last one (the trusted position): bounded work on long lines.
  const at: number[] = [];
  for (let i = msg.indexOf(marker); i >= 0; i = msg.indexOf(marker, i + marker.length)) {
    if (at.length === MAX_CANDIDATES) at[MAX_CANDIDATES - 1] = i;
    else at.push(i);
  }
  const candidates: string[] = [];
  for (const i of at) {
    const tok = /^[0-9A-Fa-f:.]{2,45}/.exec(msg.slice(i + marker.length, i + marker.length + 45))?.[0];
    const ip = tok === undefined ? null : (normalizeIp(tok) ?? normalizeIp(tok.replace(/[:.]+$/, "")));
    if (ip && !candidates.includes(ip)) candidates.push(ip);
  }
  return {
    kind: "hostile",
    time: f.time,
    server: "freeswitch",
    service: "sofia",
    pattern,
    line: f.line,
    detail: `${JSON.stringify(marker.trim())} occurs more than once`,
    candidates,
  };
}

function parseMessage(f: Frame): SecurityEvent | null {
  const msg = f.message;
  if (msg.startsWith(SIP_AUTH)) {
    const m = AUTH.exec(msg);
    if (!m) return null;
    const pattern = m[1] === "failure" ? FREESWITCH_PATTERNS.authFailure : FREESWITCH_PATTERNS.authChallenge;
    if (count(msg, FROM_IP) > 1) return hostile(f, pattern, FROM_IP);
    const ip = normalizeIp(m[5]!);
    if (!ip) return null;
    const kind = m[1] === "failure" ? "auth_failed" : "challenge_sent";
    return event(f, kind, pattern, ip, accountOf(m[4]!), `${m[2]} profile=${m[3]}`);
  }
  if (msg.startsWith(CANT_FIND)) {
    const m = NOT_FOUND.exec(msg);
    if (!m) return null;
    if (count(msg, FROM) > 1) return hostile(f, FREESWITCH_PATTERNS.userNotFound, FROM);
    const ip = normalizeIp(m[2]!);
    if (!ip) return null;
    return event(f, "unknown_account", FREESWITCH_PATTERNS.userNotFound, ip, accountOf(m[1]!), `user=[${m[1]}]`);
  }
  if (msg.startsWith("IP ")) {
    let m = REGISTER_ACL.exec(msg);
    let pattern: string = FREESWITCH_PATTERNS.registerAcl;
    if (!m) {
      m = ACL.exec(msg);
      pattern = FREESWITCH_PATTERNS.acl;
    }
    if (!m) {
      m = USER_ACL.exec(msg);
      pattern = FREESWITCH_PATTERNS.userAcl;
    }
    if (!m) return null;
    const ip = normalizeIp(m[1]!);
    if (!ip) return null;
    return event(f, "acl_denied", pattern, ip, undefined, m[2] === undefined ? undefined : `acl=${m[2]}`);
  }
  return null;
}

function parse(line: string, ctx: ParseContext): SecurityEvent | null {
  // Cheap rejection first: every event line carries one of the needles.
  if (line.indexOf(SIP_AUTH) < 0 && line.indexOf(CANT_FIND) < 0 && line.indexOf(REJECTED) < 0) return null;
  const f = frame(line, ctx);
  return f ? parseMessage(f) : null;
}

export const freeswitchParser: LineParser = {
  server: "freeswitch",
  patterns: Object.values(FREESWITCH_PATTERNS),
  needles: [SIP_AUTH, CANT_FIND, REJECTED],
  parse(line, ctx) {
    try {
      return parse(line, ctx);
    } catch {
      // A parser never throws: a line it cannot read is not an event.
      return null;
    }
  },
};
