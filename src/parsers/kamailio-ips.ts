/**
 * The fields of the recommended Kamailio `IPS:` xlog lines (docs/kamailio.md), between `IPS: `
 * and the trusted ` src_ip=… src_port=… proto=…` tail that kamailio.ts has already checked:
 *
 *   auth-failed rc=$var(rc) method=$rm user=$fU authuser=$au ua=[$ua]
 *   scanner ua=[$ua] method=$rm          (also `scanner-ua`, and `method=… ua=[…]` order)
 *
 * Every value here is attacker text. It becomes the account, the User-Agent or the detail,
 * never an address. Parsing is indexOf-based, so a long hostile value costs linear time.
 */
import type { AttackKind, InfoKind, Transport } from "../core/events.js";
import { transportFromName } from "../core/events.js";

/** What the head of an `IPS:` line says, besides the address. */
export interface IpsFields {
  readonly kind: AttackKind | InfoKind;
  readonly account?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly detail?: string | undefined;
}

/** auth_cfg_result (src/modules/auth/api.h), for the event detail. */
const AUTH_RC: Record<string, string> = {
  "-1": "AUTH_ERROR",
  "-2": "INVALID_PASSWORD",
  "-3": "USER_UNKNOWN",
  "-4": "STALE_NONCE",
  "-5": "NO_CREDENTIALS",
  "-6": "NONCE_REUSED",
  "-7": "USERNAME_EXPIRED",
  "-8": "USER_MISMATCH",
};

/** What xlog prints for a pseudo-variable that has no value. */
const NULL_PV = "<null>";

/** The transport for a `$pr` value; undefined when absent or unknown. */
export function ipsTransport(proto: string | undefined): Transport | undefined {
  return transportFromName(proto);
}

function authKind(rc: number): AttackKind | InfoKind | null {
  if (rc >= 0) return null;
  if (rc === -3) return "unknown_account";
  // Stale nonce and missing credentials are the normal first leg of a digest exchange.
  if (rc === -4 || rc === -5) return "challenge_sent";
  return "auth_failed";
}

/** A pseudo-variable's value as printed, or undefined when xlog printed `<null>` or nothing. */
function pv(value: string | undefined): string | undefined {
  return value === undefined || value === "" || value === NULL_PV ? undefined : value;
}

/** `value` of ` key=value`, up to the next ` key=` of `stops`. */
function field(s: string, key: string, stops: readonly string[]): string | undefined {
  const at = s.indexOf(` ${key}=`);
  if (at < 0) return undefined;
  const start = at + key.length + 2;
  let end = s.length;
  for (const stop of stops) {
    const e = s.indexOf(` ${stop}=`, start);
    if (e >= 0 && e < end) end = e;
  }
  return s.slice(start, end);
}

/** `ua=[…]` found at or after `from`: the closing bracket is the last one before `end` (a UA may hold brackets). */
function bracketed(s: string, from: number, end: number): string | undefined {
  const at = s.indexOf("ua=[", from);
  if (at < 0 || at >= end) return undefined;
  const close = s.lastIndexOf("]", end - 1);
  return close > at ? (pv(s.slice(at + 4, close)) ?? (close === at + 4 ? "" : undefined)) : undefined;
}

function scannerFields(head: string): IpsFields {
  const rest = head.slice(head.indexOf(" ") + 1);
  let method: string | undefined;
  let userAgent: string | undefined;
  if (rest.startsWith("method=")) {
    const sp = rest.indexOf(" ");
    method = rest.slice(7, sp < 0 ? rest.length : sp);
    userAgent = sp < 0 ? undefined : bracketed(rest, sp, rest.length);
  } else {
    const m = rest.lastIndexOf(" method=");
    method = m < 0 ? undefined : rest.slice(m + 8);
    userAgent = bracketed(rest, 0, m < 0 ? rest.length : m);
  }
  return { kind: "scanner", userAgent, detail: pv(method) ? `method=${method}` : undefined };
}

function authFields(head: string): IpsFields | null {
  const rcText = /^auth-failed rc=(-?\d{1,4})(?: |$)/.exec(head)?.[1];
  if (rcText === undefined) return null;
  const kind = authKind(Number(rcText));
  if (!kind) return null;
  const method = pv(field(head, "method", ["user"]));
  const user = pv(field(head, "user", ["authuser", "ua"]));
  const authuser = pv(field(head, "authuser", ["ua"]));
  const uaAt = head.indexOf(" ua=[");
  const detail = [`rc=${rcText}${AUTH_RC[rcText] ? ` ${AUTH_RC[rcText]}` : ""}`];
  if (method) detail.push(`method=${method}`);
  if (authuser && authuser !== user) detail.push(`authuser=${authuser}`);
  return {
    kind,
    account: user ?? authuser,
    userAgent: uaAt < 0 ? undefined : bracketed(head, uaAt, head.length),
    detail: detail.join(" "),
  };
}

/** True when the head names the scanner line (decides the pattern id before anything else is read). */
export function isScannerHead(head: string): boolean {
  return head.startsWith("scanner ") || head.startsWith("scanner-ua ");
}

/**
 * Reads the text between `IPS: ` and ` src_ip=`. Null for an IPS line of another type, or for
 * an auth result that is not a failure (rc >= 0).
 */
export function readIpsHead(head: string): IpsFields | null {
  if (isScannerHead(head)) return scannerFields(head);
  return head.startsWith("auth-failed ") ? authFields(head) : null;
}
