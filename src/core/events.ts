/**
 * The types that pass between pipeline stages. Kept small and dependency-free:
 * every stage imports this file, nothing here imports a stage.
 */

export type ServerKind = "asterisk" | "kamailio" | "freeswitch" | "custom";

export type Transport = "udp" | "tcp" | "tls" | "ws" | "wss" | "sctp";

const TRANSPORT_NAMES: ReadonlyMap<string, Transport> = new Map(
  (["udp", "tcp", "tls", "ws", "wss", "sctp"] as const).flatMap((t) => [
    [t, t],
    [t.toUpperCase(), t],
  ]),
);

/** A transport as servers print it (`UDP`, `tcp`, …), or undefined for anything else. */
export function transportFromName(name: string | undefined): Transport | undefined {
  return name === undefined ? undefined : TRANSPORT_NAMES.get(name);
}

/** Kinds that describe an attack attempt and may count towards a ban. */
export type AttackKind =
  | "auth_failed"
  | "unknown_account"
  | "acl_denied"
  | "bad_request"
  | "no_extension"
  | "scanner"
  | "flood"
  | "limit";

/** Informational kinds: never counted as failures. `auth_ok` feeds trust-after-auth. */
export type InfoKind = "auth_ok" | "challenge_sent" | "flood_end";

export type EventKind = AttackKind | InfoKind | "hostile";

export const ATTACK_KINDS: readonly AttackKind[] = [
  "auth_failed",
  "unknown_account",
  "acl_denied",
  "bad_request",
  "no_extension",
  "scanner",
  "flood",
  "limit",
];
export const INFO_KINDS: readonly InfoKind[] = ["auth_ok", "challenge_sent", "flood_end"];
export const EVENT_KINDS: readonly EventKind[] = [...ATTACK_KINDS, ...INFO_KINDS, "hostile"];

/** The peer address, always taken from a trusted position in the record. */
export interface Remote {
  /** Normalised textual address (IPv4 dotted quad or compressed IPv6, no brackets). */
  readonly address: string;
  readonly port?: number;
  readonly transport?: Transport;
}

interface EventBase {
  /** Epoch milliseconds, taken from the record (never the wall clock). */
  readonly time: number;
  readonly server: ServerKind;
  /** PJSIP, SIP, AMI, IAX2, sofia, pike, … */
  readonly service: string;
  /** Stable id of the pattern that produced the event, e.g. `asterisk.pjsip.request_failed`. */
  readonly pattern: string;
  /** Account/extension the attacker named (attacker-controlled: never a source of addresses). */
  readonly account?: string;
  readonly userAgent?: string;
  /** Call-ID, AMI session id, …: used only to de-duplicate one attempt reported twice. */
  readonly sessionId?: string;
  /** Free-form extra facts (reason text, ACL name, method, pike node, …). */
  readonly detail?: string;
  /** The raw record. */
  readonly line: string;
}

export interface AttackEvent extends EventBase {
  readonly kind: AttackKind;
  readonly remote: Remote;
}

export interface InfoEvent extends EventBase {
  readonly kind: InfoKind;
  readonly remote: Remote;
}

/**
 * A record where the attacker could have planted an address (for example two
 * `RemoteAddress=` fields). It is counted and shown, and never bans anybody.
 */
export interface HostileEvent extends EventBase {
  readonly kind: "hostile";
  readonly remote?: undefined;
  /** Every address-looking candidate found, for the operator to inspect. */
  readonly candidates: readonly string[];
}

export type SecurityEvent = AttackEvent | InfoEvent | HostileEvent;

export function isAttack(e: SecurityEvent): e is AttackEvent {
  return e.kind !== "hostile" && e.kind !== "auth_ok" && e.kind !== "challenge_sent" && e.kind !== "flood_end";
}

/** The flat shape used by `--events` NDJSON and the API. */
export interface EventRecord {
  time: string;
  server: ServerKind;
  ip: string | null;
  port: number | null;
  transport: Transport | null;
  kind: EventKind;
  service: string;
  account: string | null;
  userAgent: string | null;
  pattern: string;
  line: string;
}

export function toRecord(e: SecurityEvent): EventRecord {
  return {
    time: new Date(e.time).toISOString(),
    server: e.server,
    ip: e.remote?.address ?? null,
    port: e.remote?.port ?? null,
    transport: e.remote?.transport ?? null,
    kind: e.kind,
    service: e.service,
    account: e.account ?? null,
    userAgent: e.userAgent ?? null,
    pattern: e.pattern,
    line: e.line,
  };
}
