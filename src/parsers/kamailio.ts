/**
 * Kamailio 5.x log lines (formats.md §4), behind a syslog/journald prefix or as stderr output.
 *
 * | pattern id                  | message (after `LEVEL: `, ends the line)                                   | kind |
 * |-----------------------------|----------------------------------------------------------------------------|------|
 * | `kamailio.pike.block`       | `PIKE - BLOCKing ip <ip>, node=0x…` (pike module)                          | flood |
 * | `kamailio.cfg.pike_alert`   | `ALERT: pike blocking <method> from <$fu> (IP:<ip>:<port>)` (stock cfg)    | flood |
 * | `kamailio.cfg.malformed`    | `Malformed SIP request from <ip>:<port>` (stock cfg)                       | bad_request |
 * | `kamailio.xlog.sip_firewall`| `[SIP-FIREWALL][FAIL2BAN] <ip>` (operator convention paired with pike)     | flood |
 * | `kamailio.xlog.auth_failed` | `IPS: auth-failed rc=… … src_ip=<ip> src_port=<port>[ proto=<pr>]`         | auth_failed, unknown_account (rc=-3), challenge_sent (rc=-4/-5) |
 * | `kamailio.xlog.scanner`     | `IPS: scanner[-ua] ua=[…] method=… src_ip=<ip> src_port=<port>[ proto=…]`  | scanner |
 *
 * Trust: the log_prefix `{$mt $hdr(CSeq) $ci}`, `$fu`, `$fU`, `$au` and `$ua` are attacker text, all
 * printed BEFORE the trusted address, so every pattern is anchored at the end of the line. Three
 * checks then decide between an event and `hostile` (counted, shown, never a ban):
 * 1. the trusted marker (`PIKE - BLOCKing ip `, `(IP:`, `Malformed SIP request from `, the
 *    SIP-FIREWALL tag, `IPS: `/`src_ip=`) occurs once;
 * 2. the emitter's own text sits right before it (`pike [pike_funcs.c:N]: pike_check_ipaddr(): `
 *    or xlog's `<script>: `), preceded only by the stock log_prefix `{…} ` or nothing. Kamailio's
 *    core echoes broken requests verbatim (`parse_via(): parsing via on: <…`), so a core or
 *    module line can END with attacker text; this check tells those apart;
 * 3. for the sipwarden conventions (SIP-FIREWALL tag, `IPS:` lines) a marker that is present but
 *    not followed by the trusted tail is hostile too.
 *
 * Known limit: with stderr logging (`-E`, or a foreground unit whose stderr journald captures
 * line by line) the core's verbatim echo of a broken request becomes separate physical lines,
 * and an attacker can make one look exactly like a real Kamailio line. Syslog logging (the
 * default) keeps the echo on one line (rsyslog writes line breaks as `#012`). See docs/kamailio.md.
 *
 * Deliberately not events:
 * - `PIKE - UNBLOCKing node 0x…` carries no address (only pike's tree node), so it yields null;
 *   the detector's own ban length decides when a flood ban ends.
 * - Stock cfg `$si:$sp` with IPv6 (`2001:db8::66:53411`) is split at the last colon, which is
 *   right because `$sp` is always present; the remainder must be a valid address, else null.
 * - Raw stderr lines (` 1(27432) WARNING: …`) carry no time. An optional leading timestamp (as
 *   added by `journalctl`, `ts` or a syslog prefix) is used when present; otherwise, and only in
 *   this case, the time is `ctx.now`.
 * - A bare `LEVEL: …` message with neither a syslog prefix nor the stderr `%2d(%d) ` prefix.
 * - `log_engine_type="json"` output, and a changed xlog "prefix" modparam or a log_prefix not of
 *   the form `{…} `.
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
  Transport,
} from "../core/events.js";
import { ipsTransport, isScannerHead, readIpsHead } from "./kamailio-ips.js";
import { leadingTimestamp, splitSyslogPrefix } from "./syslog-prefix.js";
import type { LineParser, ParseContext } from "./types.js";

const PIKE = "PIKE - BLOCKing ip ";
const ALERT_IP = "(IP:";
const ALERT = "pike blocking ";
const MALFORMED = "Malformed SIP request from ";
const FIREWALL = "[SIP-FIREWALL][FAIL2BAN] ";
const IPS = "IPS: ";
const SRC_IP = "src_ip=";

export const KAMAILIO_PATTERNS = {
  pikeBlock: "kamailio.pike.block",
  pikeAlert: "kamailio.cfg.pike_alert",
  malformed: "kamailio.cfg.malformed",
  sipFirewall: "kamailio.xlog.sip_firewall",
  authFailed: "kamailio.xlog.auth_failed",
  scanner: "kamailio.xlog.scanner",
} as const;

/** `%2d(%d) ` exactly: a one-digit process number is padded with one space, larger ones are not. */
const STDERR = /^(?: \d|\d{2,5})\(\d{1,10}\) /;
const LEVEL = /^(?:ALERT|BUG|CRITICAL|ERROR|WARNING|NOTICE|INFO|DEBUG)?: /;
const PIKE_LEAD = /pike \[pike_funcs\.c:\d{1,6}\]: pike_check_ipaddr\(\): $/;
const PIKE_TAIL = /^([0-9A-Fa-f:.]{2,45}), node=(0x[0-9A-Fa-f]{1,16})$/;
const IPS_TAIL = /^ src_ip=(\S+) src_port=(\d{1,5})(?: proto=([a-z]{2,5}))?$/;
const HOSTPORT = /^[0-9A-Fa-f:.]{2,45}:\d{1,5}$/;
const ADDRESS_TOKEN = /^[0-9A-Fa-f:.[\]]{2,60}/;
const METHOD = /^<script>: ALERT: pike blocking (\S{1,32}) from /;
/** xlog's default "prefix" modparam. */
const XLOG = "<script>: ";
const XLOG_ALERT = XLOG + "ALERT: " + ALERT;
/** Longer than any regex lead (PIKE_LEAD is under 60 characters). */
const LEAD_WINDOW = 96;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Frame {
  readonly time: number;
  /** The message after `LEVEL: `. */
  readonly body: string;
  readonly line: string;
}

interface Extra {
  port?: number;
  transport?: Transport | undefined;
  account?: string | undefined;
  userAgent?: string | undefined;
  detail?: string | undefined;
}

function count(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** `ip:port` where an IPv6 has no brackets: `$sp` is always printed, so the last colon splits. */
function splitColon(s: string): { ip: string; port: number } | null {
  if (!HOSTPORT.test(s)) return null;
  const i = s.lastIndexOf(":");
  const port = Number(s.slice(i + 1));
  const ip = normalizeIp(s.slice(0, i));
  return ip && port <= 65535 ? { ip, port } : null;
}

/**
 * True when the text before `at` is `lead` (a string, or a regex anchored with `$`) and before
 * that only the stock log_prefix `{…} ` or nothing. This is what tells a real pike or xlog line
 * from a core or module message that happens to END with attacker text (Kamailio echoes broken
 * SIP messages verbatim, e.g. `parse_via(): parsing via on: <…>`).
 */
function framed(body: string, at: number, lead: string | RegExp): boolean {
  let start: number;
  if (typeof lead === "string") {
    start = at - lead.length;
    if (start < 0 || !body.startsWith(lead, start)) return false;
  } else {
    // The regex leads are short: look only at a bounded window, so a long line stays linear.
    const from = Math.max(0, at - LEAD_WINDOW);
    const m = lead.exec(body.slice(from, at));
    if (!m) return false;
    start = from + m.index;
  }
  if (start === 0) return true;
  return (
    start >= 3 &&
    body.charCodeAt(0) === 123 /* { */ &&
    body.charCodeAt(start - 2) === 125 /* } */ &&
    body.charCodeAt(start - 1) === 32
  );
}

/** Candidates reported for one hostile line: enough to show the plant, bounded so a long line stays cheap. */
const MAX_CANDIDATES = 8;

/**
 * The address-looking token after occurrences of `marker`, in line order: the first few and the
 * last one (the last sits at the trusted position).
 */
function candidatesAfter(body: string, marker: string): string[] {
  const at: number[] = [];
  for (let i = body.indexOf(marker); i >= 0; i = body.indexOf(marker, i + marker.length)) {
    if (at.length === MAX_CANDIDATES) at[MAX_CANDIDATES - 1] = i;
    else at.push(i);
  }
  const out: string[] = [];
  for (const i of at) {
    const tok = ADDRESS_TOKEN.exec(body.slice(i + marker.length, i + marker.length + 60))?.[0];
    if (!tok) continue;
    const ip = normalizeIp(tok) ?? splitColon(tok)?.ip ?? normalizeIp(tok.replace(/[\]:.]+$/, ""));
    if (ip && !out.includes(ip)) out.push(ip);
  }
  return out;
}

function levelled(time: number, msg: string, line: string): Frame | null {
  const lv = LEVEL.exec(msg);
  return lv ? { time, body: msg.slice(lv[0].length), line } : null;
}

function frame(line: string, ctx: ParseContext): Frame | null {
  const sys = splitSyslogPrefix(line, ctx);
  if (sys) {
    const s = STDERR.exec(sys.message);
    const f = levelled(sys.time, s ? sys.message.slice(s[0].length) : sys.message, line);
    if (f) return f;
    // `<time>  1(27432) ALERT: …` also reads as host "1(27432)" and tag "ALERT": try it as stderr.
  }
  const ts = leadingTimestamp(line, ctx);
  let msg = line;
  if (ts) {
    if (line.charCodeAt(ts.end) !== 32) return null;
    msg = line.slice(ts.end + 1);
  }
  // Without a syslog tag, only the stderr `%2d(%d) ` prefix shows the line is Kamailio's.
  const s = STDERR.exec(msg);
  return s ? levelled(ts ? ts.time : ctx.now, msg.slice(s[0].length), line) : null;
}

function hostile(f: Frame, pattern: string, service: string, marker: string): HostileEvent {
  return {
    kind: "hostile",
    time: f.time,
    server: "kamailio",
    service,
    pattern,
    line: f.line,
    detail: `${JSON.stringify(marker.trim())} is repeated or out of place`,
    candidates: candidatesAfter(f.body, marker),
  };
}

function event(
  f: Frame,
  kind: AttackKind | InfoKind,
  pattern: string,
  service: string,
  address: string,
  x: Extra = {},
): SecurityEvent {
  const remote: Mutable<Remote> = { address };
  if (x.port !== undefined) remote.port = x.port;
  if (x.transport !== undefined) remote.transport = x.transport;
  const ev: Mutable<AttackEvent | InfoEvent> = {
    kind,
    time: f.time,
    server: "kamailio",
    service,
    pattern,
    line: f.line,
    remote,
  };
  if (x.account) ev.account = x.account;
  if (x.userAgent !== undefined) ev.userAgent = x.userAgent;
  if (x.detail) ev.detail = x.detail;
  return ev;
}

function ipsEvent(f: Frame, tailAt: number, tail: RegExpExecArray): SecurityEvent | null {
  const b = f.body;
  const ipsAt = b.indexOf(IPS);
  if (ipsAt < 0 || ipsAt > tailAt) return null;
  const head = b.slice(ipsAt + IPS.length, tailAt);
  const scanner = isScannerHead(head);
  const pattern = scanner ? KAMAILIO_PATTERNS.scanner : KAMAILIO_PATTERNS.authFailed;
  const service = scanner ? "sip" : "auth";
  // One `IPS:` and one `src_ip=` per line; a second one was planted (Call-ID, From user, UA).
  if (count(b, SRC_IP) > 1 || count(b, IPS) > 1 || !framed(b, ipsAt, XLOG)) return hostile(f, pattern, service, SRC_IP);
  const fields = readIpsHead(head);
  if (!fields) return null;
  const ip = normalizeIp(tail[1]!);
  const port = Number(tail[2]);
  if (!ip || port > 65535) return hostile(f, pattern, service, SRC_IP);
  const { kind, account, userAgent, detail } = fields;
  return event(f, kind, pattern, service, ip, { port, transport: ipsTransport(tail[3]), account, userAgent, detail });
}

/** Index of an occurrence of `text` before `end` that starts the message or follows the log_prefix; -1 if none. */
function framedStart(body: string, text: string, end: number): number {
  for (let i = body.indexOf(text); i >= 0 && i < end; i = body.indexOf(text, i + 1)) {
    if (framed(body, i, "")) return i;
  }
  return -1;
}

/**
 * Decides the line type from its trusted tail. Each tail is "marker + address + fixed text" up
 * to the end, and no two tails can match the same line, so attacker text earlier in the line
 * cannot change which type is chosen. Then the emitter's own text must sit right before the
 * marker (see `framed`), and the marker must occur once.
 */
function classify(f: Frame): SecurityEvent | null {
  const b = f.body;

  let at = b.lastIndexOf(PIKE);
  if (at >= 0) {
    const m = PIKE_TAIL.exec(b.slice(at + PIKE.length));
    const ip = m && normalizeIp(m[1]!);
    if (ip) {
      if (count(b, PIKE) > 1 || !framed(b, at, PIKE_LEAD)) return hostile(f, KAMAILIO_PATTERNS.pikeBlock, "pike", PIKE);
      return event(f, "flood", KAMAILIO_PATTERNS.pikeBlock, "pike", ip, { detail: `node=${m[2]}` });
    }
  }

  at = b.lastIndexOf(ALERT_IP);
  if (at >= 0 && b.endsWith(")") && b.lastIndexOf(ALERT, at) >= 0) {
    const hp = splitColon(b.slice(at + ALERT_IP.length, -1));
    if (hp) {
      const start = count(b, ALERT_IP) > 1 ? -1 : framedStart(b, XLOG_ALERT, at);
      if (start < 0) return hostile(f, KAMAILIO_PATTERNS.pikeAlert, "pike", ALERT_IP);
      const method = METHOD.exec(b.slice(start))?.[1];
      return event(f, "flood", KAMAILIO_PATTERNS.pikeAlert, "pike", hp.ip, {
        port: hp.port,
        detail: method ? `method=${method}` : undefined,
      });
    }
  }

  at = b.lastIndexOf(MALFORMED);
  if (at >= 0) {
    const hp = splitColon(b.slice(at + MALFORMED.length));
    if (hp) {
      if (count(b, MALFORMED) > 1 || !framed(b, at, XLOG))
        return hostile(f, KAMAILIO_PATTERNS.malformed, "sanity", MALFORMED);
      return event(f, "bad_request", KAMAILIO_PATTERNS.malformed, "sanity", hp.ip, { port: hp.port });
    }
  }

  at = b.lastIndexOf(FIREWALL);
  const fwIp = at >= 0 ? normalizeIp(b.slice(at + FIREWALL.length)) : null;
  if (fwIp) {
    if (count(b, FIREWALL) > 1 || !framed(b, at, XLOG))
      return hostile(f, KAMAILIO_PATTERNS.sipFirewall, "pike", FIREWALL);
    return event(f, "flood", KAMAILIO_PATTERNS.sipFirewall, "pike", fwIp);
  }

  at = b.lastIndexOf(" " + SRC_IP);
  const tail = at >= 0 ? IPS_TAIL.exec(b.slice(at)) : null;
  if (tail) return ipsEvent(f, at, tail);
  // A marker of our own conventions whose line does not end in its trusted tail: somebody wrote it.
  if (b.includes(FIREWALL)) return hostile(f, KAMAILIO_PATTERNS.sipFirewall, "pike", FIREWALL);
  if (at >= 0 && (b.includes(IPS) || count(b, SRC_IP) > 1)) {
    const scanner = b.includes(IPS + "scanner");
    return hostile(
      f,
      scanner ? KAMAILIO_PATTERNS.scanner : KAMAILIO_PATTERNS.authFailed,
      scanner ? "sip" : "auth",
      SRC_IP,
    );
  }
  return null;
}

function parse(line: string, ctx: ParseContext): SecurityEvent | null {
  // Cheap rejection before any regex: every event line carries one of the needles.
  if (
    line.indexOf(SRC_IP) < 0 &&
    line.indexOf(PIKE) < 0 &&
    line.indexOf(ALERT) < 0 &&
    line.indexOf(FIREWALL) < 0 &&
    line.indexOf(MALFORMED) < 0
  )
    return null;
  const f = frame(line, ctx);
  return f ? classify(f) : null;
}

export const kamailioParser: LineParser = {
  server: "kamailio",
  patterns: Object.values(KAMAILIO_PATTERNS),
  needles: [PIKE, ALERT, MALFORMED, FIREWALL, SRC_IP],
  parse(line, ctx) {
    try {
      return parse(line, ctx);
    } catch {
      // A parser never throws: a line it cannot read is not an event.
      return null;
    }
  },
};
