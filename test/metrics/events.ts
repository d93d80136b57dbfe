/**
 * Hand-built events and records for the metrics tests, shaped exactly like the parsers' output.
 */
import type { AttackKind, InfoKind, SecurityEvent, ServerKind, Transport } from "../../src/core/events.js";
import type { RawRecord } from "../../src/sources/types.js";

export const T0 = Date.UTC(2024, 4, 14, 10, 21, 7);

export function attack(
  kind: AttackKind | InfoKind,
  address: string,
  opts: { service?: string; server?: ServerKind; transport?: Transport; time?: number } = {},
): SecurityEvent {
  return {
    kind,
    remote: { address, port: 5060, ...(opts.transport ? { transport: opts.transport } : {}) },
    time: opts.time ?? T0,
    server: opts.server ?? "asterisk",
    service: opts.service ?? "PJSIP",
    pattern: `test.${kind}`,
    line: `test line ${kind} ${address}`,
  } as SecurityEvent;
}

export function hostile(time = T0): SecurityEvent {
  return {
    kind: "hostile",
    candidates: ["198.51.100.1", "198.51.100.2"],
    time,
    server: "asterisk",
    service: "PJSIP",
    pattern: "test.hostile",
    line: "two addresses",
  };
}

export function record(source: string, received = T0 + 250): RawRecord {
  return { text: "x", source, format: "asterisk", received };
}
