/**
 * AMI test data: event classes and masks as manager.c defines them, framing helpers that build
 * server → client messages the way Asterisk frames them, and the recorded sample stream from
 * ../shared/reference/samples/ami-security-events.txt (formats.md §6).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SHARED } from "./paths.js";

/** Event classes from include/asterisk/manager.h (EVENT_FLAG_*). */
export const EVENT_FLAGS: Readonly<Record<string, number>> = {
  system: 1 << 0,
  call: 1 << 1,
  log: 1 << 2,
  verbose: 1 << 3,
  command: 1 << 4,
  agent: 1 << 5,
  user: 1 << 6,
  config: 1 << 7,
  dtmf: 1 << 8,
  reporting: 1 << 9,
  cdr: 1 << 10,
  dialplan: 1 << 11,
  originate: 1 << 12,
  agi: 1 << 13,
  cc: 1 << 15,
  aoc: 1 << 16,
  test: 1 << 17,
  security: 1 << 18,
  message: 1 << 19,
};
const ALL = Object.values(EVENT_FLAGS).reduce((a, b) => a | b, 0);
export const SECURITY = EVENT_FLAGS.security!;

/** `strings_to_mask()`: -1 for an empty string (leave the mask as it is). */
export function stringsToMask(s: string): number {
  if (s === "") return -1;
  if (/^\d+$/.test(s)) return Number.parseInt(s, 10);
  if (/^(no|false|n|f|0|off)$/i.test(s)) return 0;
  if (/^(yes|true|y|t|1|on)$/i.test(s)) return ALL;
  let mask = 0;
  const parts = s.split(",");
  for (const [name, bit] of Object.entries(EVENT_FLAGS)) if (parts.includes(name)) mask |= bit;
  if (parts.includes("all")) mask |= ALL;
  return mask;
}

/** Frames one message server → client: `Key: Value\r\n` lines and a blank line. */
export function frame(fields: readonly (readonly [string, string])[]): string {
  let out = "";
  for (const [k, v] of fields) out += `${k}: ${v}\r\n`;
  return out + "\r\n";
}

/** A security event as `__manager_event_sessions_va()` frames it (no Timestamp, no SystemName). */
export function securityEvent(name: string, ies: readonly (readonly [string, string])[]): string {
  return frame([["Event", name], ["Privilege", "security,all"], ...ies]);
}

/** The sample stream (formats.md §6): banner, replies and security events, CRLF framed. */
export function loadSampleStream(): { banner: string; messages: string[] } {
  const text = readFileSync(join(SHARED, "reference", "samples", "ami-security-events.txt"), "latin1");
  const lines = text.split("\n");
  let i = 0;
  while (lines[i]?.startsWith("#")) i++;
  const body = lines.slice(i).join("\n");
  const bannerEnd = body.indexOf("\r\n");
  const banner = body.slice(0, bannerEnd);
  const rest = body.slice(bannerEnd + 2);
  const messages = rest
    .split("\r\n\r\n")
    .filter((m) => m.trim() !== "")
    .map((m) => m + "\r\n\r\n");
  return { banner, messages };
}

/** The sample's security events, each framed exactly as recorded. */
export function sampleSecurityEvents(): string[] {
  return loadSampleStream().messages.filter((m) => m.startsWith("Event: "));
}
