/**
 * Operator-defined patterns (`parsers.custom` in the config): a regular expression with named
 * groups, turned into a LineParser with server `custom` and pattern ids `custom.<id>`.
 *
 * - `(?<ip>…)` is required. Its text must be a strict IP literal (brackets allowed); anything
 *   else, a host name in particular, yields no event. Names are never resolved.
 * - `(?<port>…)`, `(?<user>…)` (the account) and `(?<ua>…)` (the User-Agent) are optional. A
 *   port outside 1–65535 is dropped, the event is kept.
 * - Time: a custom line has no known time format. A leading ISO 8601/RFC 3339 timestamp, a
 *   syslog/journald prefix (`May 14 10:21:08 host tag[pid]: …`), or a bracketed one
 *   (`[2024-05-14 10:21:08] …`) is used when present; otherwise the event gets `ctx.now`.
 *   Times without a zone are local time in `ctx.zone`.
 * - The regex is the operator's: it is compiled once, without flags, and should be anchored so
 *   that the `ip` group sits at a position the attacker cannot write (see docs/kamailio.md).
 */

import type { CustomPatternConfig } from "../config/schema.js";
import { normalizeIp } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import type { AttackKind, EventKind, InfoKind, Remote, SecurityEvent } from "../core/events.js";
import { leadingTimestamp, splitSyslogPrefix } from "./syslog-prefix.js";
import type { LineParser, ParseContext } from "./types.js";

interface Compiled {
  readonly id: string;
  readonly pattern: string;
  readonly regex: RegExp;
  readonly kind: EventKind;
  readonly service: string;
  readonly needle: string | undefined;
}

const GROUPS = ["ip", "port", "user", "ua"] as const;

function compile(p: CustomPatternConfig, i: number): Compiled {
  const path = `parsers.custom[${i}].regex`;
  let regex: RegExp;
  try {
    regex = new RegExp(p.regex);
  } catch (cause) {
    throw new SipwardenError("PATTERN_INVALID", `does not compile: ${(cause as Error).message}`, { path, cause });
  }
  // Every named group shows up (undefined) in `groups` of a match of the empty alternative.
  const names = Object.keys(new RegExp(`${p.regex}|`).exec("")?.groups ?? {});
  if (!names.includes("ip")) {
    throw new SipwardenError("PATTERN_INVALID", "has no named group (?<ip>…) for the address", { path });
  }
  if (regex.test("")) {
    throw new SipwardenError("PATTERN_INVALID", "matches an empty line", { path });
  }
  const unknown = names.filter((n) => !(GROUPS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new SipwardenError(
      "PATTERN_INVALID",
      `unknown named group ${unknown.map((n) => `(?<${n}>…)`).join(", ")}; use ip, port, user, ua`,
      { path },
    );
  }
  return {
    id: p.id,
    pattern: `custom.${p.id}`,
    regex,
    kind: p.kind as EventKind,
    service: p.service,
    needle: p.needle === undefined || p.needle === "" ? undefined : p.needle,
  };
}

function lineTime(line: string, ctx: ParseContext): number {
  return splitSyslogPrefix(line, ctx)?.time ?? leadingTimestamp(line, ctx)?.time ?? ctx.now;
}

function toEvent(
  c: Compiled,
  groups: Record<string, string | undefined>,
  line: string,
  ctx: ParseContext,
): SecurityEvent | null {
  const raw = groups.ip;
  const ip = raw === undefined ? null : normalizeIp(raw);
  if (!ip) return null;
  const time = lineTime(line, ctx);
  const base = { time, server: "custom" as const, service: c.service, pattern: c.pattern, line };
  const extra: { account?: string; userAgent?: string } = {};
  if (groups.user) extra.account = groups.user;
  if (groups.ua !== undefined) extra.userAgent = groups.ua;
  if (c.kind === "hostile") {
    return { ...base, ...extra, kind: "hostile", candidates: [ip] };
  }
  const remote: { -readonly [K in keyof Remote]: Remote[K] } = { address: ip };
  if (groups.port !== undefined && /^\d{1,5}$/.test(groups.port)) {
    const port = Number(groups.port);
    if (port >= 1 && port <= 65535) remote.port = port;
  }
  return { ...base, ...extra, kind: c.kind as AttackKind | InfoKind, remote };
}

/**
 * Builds one parser from the configured patterns, tried in order; the first that matches wins.
 * Throws SipwardenError `PATTERN_INVALID` (path `parsers.custom[i].regex` or `.id`) for a regex
 * that does not compile, lacks `(?<ip>…)`, has an unknown named group or matches an empty line,
 * and for a duplicate id.
 *
 * `needles` holds every pattern's needle; when some pattern has none it is `[""]`, which every
 * line contains, so a bulk prefilter never skips a line that pattern could match.
 */
export function createCustomParser(patterns: readonly CustomPatternConfig[]): LineParser {
  const seen = new Set<string>();
  const compiled = patterns.map((p, i) => {
    if (seen.has(p.id)) {
      throw new SipwardenError("PATTERN_INVALID", `duplicate pattern id ${JSON.stringify(p.id)}`, {
        path: `parsers.custom[${i}].id`,
      });
    }
    seen.add(p.id);
    return compile(p, i);
  });
  const needles = compiled.every((c) => c.needle !== undefined)
    ? [...new Set(compiled.map((c) => c.needle as string))]
    : [""];
  return {
    server: "custom",
    patterns: compiled.map((c) => c.pattern),
    needles: compiled.length === 0 ? [] : needles,
    parse(line, ctx) {
      try {
        for (const c of compiled) {
          if (c.needle !== undefined && !line.includes(c.needle)) continue;
          const m = c.regex.exec(line);
          if (!m) continue;
          const ev = toEvent(c, m.groups ?? {}, line, ctx);
          if (ev) return ev;
        }
      } catch {
        // A parser never throws: a line it cannot read is not an event.
      }
      return null;
    },
  };
}
