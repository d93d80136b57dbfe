/**
 * The nft text sipwarden writes and the JSON it reads back. Pure functions: no process, no
 * clock. Everything here lives in one table (`inet <table>`) that sipwarden owns outright.
 */
import { normalizeCidr } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import type { EnforceSettings } from "./types.js";

export type SetName = "addr4" | "addr6" | "net4" | "net6";
export const SET_NAMES: readonly SetName[] = ["addr4", "addr6", "net4", "net6"];
export const CHAIN = "prerouting";

const SET_SPEC: Record<SetName, { type: string; flags: string; match: string }> = {
  addr4: { type: "ipv4_addr", flags: "timeout", match: "ip saddr" },
  addr6: { type: "ipv6_addr", flags: "timeout", match: "ip6 saddr" },
  net4: { type: "ipv4_addr", flags: "interval,timeout", match: "ip saddr" },
  net6: { type: "ipv6_addr", flags: "interval,timeout", match: "ip6 saddr" },
};

/**
 * Longer bans are written without a timeout (permanent) and left to the store to lift: nft
 * refuses some very long timeouts, and ten years is forever for a ban.
 */
export const MAX_TIMEOUT_MS = 3650 * 86_400_000;

const TABLE_NAME = /^[a-z][a-z0-9_]{0,30}$/;

export function checkTableName(name: string): string {
  if (!TABLE_NAME.test(name)) throw new SipwardenError("CONFIG_INVALID", `bad table name ${JSON.stringify(name)}`);
  return name;
}

export function setFor(t: { family: 4 | 6; net: boolean }): SetName {
  return t.net ? (t.family === 4 ? "net4" : "net6") : t.family === 4 ? "addr4" : "addr6";
}

/**
 * `1d2h3m4s5ms`: nft reads a bare `<n>ms` into 32 bits, so long timeouts need the units.
 */
export function formatTimeout(ms: number): string {
  let rest = Math.max(1, Math.ceil(ms));
  let out = "";
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
    ["ms", 1],
  ] as const) {
    if (rest >= size) {
      out += Math.floor(rest / size) + unit;
      rest %= size;
    }
  }
  return out;
}

/** The remaining time to write for a ban, or null for a permanent element. */
export function remainingFor(expiresAt: number | null, now: number): number | null {
  if (expiresAt === null) return null;
  const left = expiresAt - now;
  return left > MAX_TIMEOUT_MS ? null : left;
}

/** One set element: `1.2.3.4`, `2001:db8::/64 timeout 1h`. */
export function elementText(text: string, remainingMs: number | null): string {
  return remainingMs === null ? text : `${text} timeout ${formatTimeout(remainingMs)}`;
}

export function elementCommand(verb: "add" | "delete", table: string, set: SetName, elems: readonly string[]): string {
  return `${verb} element inet ${table} ${set} { ${elems.join(", ")} }`;
}

/** The protocol/port match in front of every rule; empty when every packet is blocked. */
export function l4Match(settings: Pick<EnforceSettings, "ports" | "protocols">, only?: "tcp"): string {
  const protos = only
    ? [only]
    : settings.protocols.length === 0
      ? ["udp", "tcp"]
      : [...new Set(settings.protocols)].sort().reverse();
  const ports = [...new Set(settings.ports)].sort((a, b) => a - b);
  for (const p of ports)
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new SipwardenError("CONFIG_INVALID", `bad port ${p}`);
  const one = (xs: readonly (string | number)[]) => (xs.length === 1 ? String(xs[0]) : `{ ${xs.join(", ")} }`);
  if (ports.length === 0) return protos.length === 2 ? "" : `meta l4proto ${one(protos)} `;
  return `meta l4proto ${one(protos)} th dport ${one(ports)} `;
}

/**
 * The commands that create the table, or bring an existing one up to date without losing its
 * elements: `add` is a no-op for what exists, and the chain is flushed and refilled in the
 * same transaction, so there is never a moment without the rules and never a duplicate.
 */
export function rulesetCommands(settings: EnforceSettings): string[] {
  const t = checkTableName(settings.table);
  const out = [`add table inet ${t}`];
  for (const s of SET_NAMES)
    out.push(`add set inet ${t} ${s} { type ${SET_SPEC[s].type}; flags ${SET_SPEC[s].flags}; }`);
  // Priority raw (-300) runs before conntrack (-200): a banned packet is dropped before it can
  // refresh or create a flow, whatever the host's own firewall accepts later.
  out.push(`add chain inet ${t} ${CHAIN} { type filter hook prerouting priority raw; policy accept; }`);
  out.push(`flush chain inet ${t} ${CHAIN}`);
  const l4 = l4Match(settings);
  const tcpToo = settings.protocols.length === 0 || settings.protocols.includes("tcp");
  for (const s of SET_NAMES) {
    const match = `${SET_SPEC[s].match} @${s}`;
    if (settings.action === "drop") out.push(`add rule inet ${t} ${CHAIN} ${l4}${match} counter drop`);
    else {
      if (tcpToo)
        out.push(`add rule inet ${t} ${CHAIN} ${l4Match(settings, "tcp")}${match} counter reject with tcp reset`);
      out.push(`add rule inet ${t} ${CHAIN} ${l4}${match} counter reject`);
    }
  }
  return out;
}

/** An element as the kernel lists it. */
export interface KernelElement {
  set: SetName;
  /** Normalised target text, or `a-b` for a range sipwarden did not write. */
  text: string;
  /** Epoch ms (the kernel lists whole seconds), null when the element has no timeout. */
  expiresAt: number | null;
}

export interface Listing {
  /** False when the table does not exist. */
  exists: boolean;
  sets: Set<SetName>;
  elements: KernelElement[];
  /** Number of rules in the chain (a check for duplicates). */
  rules: number;
}

function valueText(v: unknown): string | null {
  if (typeof v === "string") return normalizeCidr(v)?.text ?? null;
  if (v && typeof v === "object") {
    const o = v as { prefix?: { addr?: unknown; len?: unknown }; range?: unknown };
    if (o.prefix && typeof o.prefix.addr === "string" && typeof o.prefix.len === "number")
      return normalizeCidr(`${o.prefix.addr}/${o.prefix.len}`)?.text ?? null;
    if (Array.isArray(o.range) && o.range.length === 2 && o.range.every((x) => typeof x === "string"))
      return `${o.range[0]}-${o.range[1]}`;
  }
  return null;
}

/** Reads `nft -j list table inet <t>` output. */
export function parseListing(json: unknown, table: string, now: number): Listing {
  const out: Listing = { exists: false, sets: new Set(), elements: [], rules: 0 };
  const items = (json as { nftables?: unknown[] } | null)?.nftables;
  if (!Array.isArray(items)) return out;
  for (const item of items) {
    if (!item || typeof item !== "object") continue;
    const o = item as Record<string, Record<string, unknown>>;
    if (o.table && o.table.name === table && o.table.family === "inet") out.exists = true;
    if (o.rule && o.rule.table === table && o.rule.chain === CHAIN) out.rules++;
    const set = o.set;
    if (!set || set.table !== table || !SET_NAMES.includes(set.name as SetName)) continue;
    out.exists = true;
    const name = set.name as SetName;
    out.sets.add(name);
    const elems = Array.isArray(set.elem) ? set.elem : [];
    for (const e of elems) {
      let val: unknown = e;
      let expires: number | null = null;
      const wrapped = (e as { elem?: { val?: unknown; timeout?: unknown; expires?: unknown } } | null)?.elem;
      if (wrapped && typeof wrapped === "object") {
        val = wrapped.val;
        if (typeof wrapped.timeout === "number")
          expires = now + (typeof wrapped.expires === "number" ? wrapped.expires : 0) * 1000;
      }
      const text = valueText(val);
      if (text !== null) out.elements.push({ set: name, text, expiresAt: expires });
    }
  }
  return out;
}
