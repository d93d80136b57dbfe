/**
 * The 15 Asterisk security event types (include/asterisk/security_events_defs.h) and what
 * each means to sipwarden. Shared by the security-log parser and the AMI source, so that
 * both sources turn the same event into the same kind.
 */
import { normalizeIp } from "../core/address.js";
import type { EventKind, Transport } from "../core/events.js";

export const ASTERISK_SECURITY_EVENTS = {
  FailedACL: "acl_denied",
  InvalidAccountID: "unknown_account",
  SessionLimit: "limit",
  MemoryLimit: "limit",
  LoadAverageLimit: "limit",
  RequestNotSupported: "bad_request",
  RequestNotAllowed: "bad_request",
  AuthMethodNotAllowed: "bad_request",
  RequestBadFormat: "bad_request",
  SuccessfulAuth: "auth_ok",
  UnexpectedAddress: "acl_denied",
  ChallengeResponseFailed: "auth_failed",
  InvalidPassword: "auth_failed",
  ChallengeSent: "challenge_sent",
  InvalidTransport: "bad_request",
} as const satisfies Record<string, EventKind>;

export type AsteriskSecurityEventName = keyof typeof ASTERISK_SECURITY_EVENTS;

export function isAsteriskSecurityEvent(name: string): name is AsteriskSecurityEventName {
  return Object.hasOwn(ASTERISK_SECURITY_EVENTS, name);
}

/** Kind for an event, refined by its fields (chan_sip reports a dialled unknown extension as FailedACL). */
export function asteriskEventKind(name: AsteriskSecurityEventName, aclName?: string): EventKind {
  if (name === "FailedACL" && aclName === "no_extension_match") return "no_extension";
  return ASTERISK_SECURITY_EVENTS[name];
}

/** Strict `IPV4/UDP/198.51.100.7/5060` syntax from formats.md §1.5 (transport optional). */
const ADDR = /^IPV[46]\/(?:(UDP|TCP|TLS|WS|WSS)\/)?([0-9A-Fa-f:.]+)\/(\d{1,5})$/;

export interface AsteriskAddress {
  ip: string;
  port: number;
  transport?: Transport;
}

/** Parses an Asterisk RemoteAddress value; null for anything not strictly in that form. */
export function parseAsteriskAddress(value: string): AsteriskAddress | null {
  const m = ADDR.exec(value);
  if (!m) return null;
  const ip = normalizeIp(m[2]!);
  const port = Number(m[3]);
  if (!ip || port > 65535) return null;
  const t = m[1]?.toLowerCase() as Transport | undefined;
  return t ? { ip, port, transport: t } : { ip, port };
}
