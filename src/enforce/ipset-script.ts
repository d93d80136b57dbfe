/**
 * Text for the ipset + iptables backend: `ipset restore` input, `iptables-restore` input and
 * the parser for `ipset save` output. Pure functions.
 */
import { normalizeCidr } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import type { EnforceSettings } from "./types.js";

export type IpsetKind = "addr4" | "addr6" | "net4" | "net6";
export const IPSET_KINDS: readonly IpsetKind[] = ["addr4", "addr6", "net4", "net6"];

/** ipset keeps timeouts in whole seconds and refuses more than this. */
export const IPSET_MAX_TIMEOUT_S = 2_147_483;
/** Enough room for a large attack; the kernel default (65536) is too small. */
export const IPSET_MAXELEM = 1_048_576;

export interface IpsetNames {
  sets: Record<IpsetKind, string>;
  /** Own iptables chain, jumped to from one rule in PREROUTING (raw) or INPUT (filter). */
  chain: string;
}

/** Set and chain names from the table name; ipset names stop at 31 characters. */
export function ipsetNames(table: string): IpsetNames {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(table))
    throw new SipwardenError("CONFIG_INVALID", `bad table name ${JSON.stringify(table)}`);
  const stem = table.slice(0, 24);
  return {
    sets: { addr4: `${stem}-addr4`, addr6: `${stem}-addr6`, net4: `${stem}-net4`, net6: `${stem}-net6` },
    chain: stem,
  };
}

export function kindFor(t: { family: 4 | 6; net: boolean }): IpsetKind {
  return t.net ? (t.family === 4 ? "net4" : "net6") : t.family === 4 ? "addr4" : "addr6";
}

/** `create` lines for `ipset restore -exist` (a no-op for sets that already exist alike). */
export function createLines(names: IpsetNames): string[] {
  return IPSET_KINDS.map((k) => {
    const type = k.startsWith("net") ? "hash:net" : "hash:ip";
    const family = k.endsWith("6") ? "inet6" : "inet";
    return `create ${names.sets[k]} ${type} family ${family} timeout 0 maxelem ${IPSET_MAXELEM}`;
  });
}

/** Whole seconds to write for a ban: 0 is permanent, longer bans are capped. */
export function ipsetTimeout(remainingMs: number | null): number {
  if (remainingMs === null) return 0;
  return Math.min(IPSET_MAX_TIMEOUT_S, Math.max(1, Math.ceil(remainingMs / 1000)));
}

export function addLine(set: string, text: string, remainingMs: number | null): string {
  return `add ${set} ${text} timeout ${ipsetTimeout(remainingMs)}`;
}

export function delLine(set: string, text: string): string {
  return `del ${set} ${text}`;
}

/** Where the jump goes: drop early in raw; REJECT is only allowed in the filter table. */
export function hookFor(action: EnforceSettings["action"]): { table: "raw" | "filter"; chain: "PREROUTING" | "INPUT" } {
  return action === "drop" ? { table: "raw", chain: "PREROUTING" } : { table: "filter", chain: "INPUT" };
}

/** `iptables-restore --noflush` input that (re)fills the own chain for one family. */
export function chainRestore(names: IpsetNames, settings: EnforceSettings, family: 4 | 6): string {
  const { table } = hookFor(settings.action);
  const sets = family === 4 ? [names.sets.addr4, names.sets.net4] : [names.sets.addr6, names.sets.net6];
  const protos = settings.protocols.length === 0 ? ["udp", "tcp"] : [...new Set(settings.protocols)];
  const ports = [...new Set(settings.ports)].sort((a, b) => a - b);
  for (const p of ports)
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new SipwardenError("CONFIG_INVALID", `bad port ${p}`);
  const unreachable = family === 4 ? "icmp-port-unreachable" : "icmp6-port-unreachable";
  const lines = [`*${table}`, `:${names.chain} - [0:0]`];
  // With no ports and both protocols, the whole address is blocked, as with nftables.
  const matches: { proto: string | null; ports: string }[] =
    ports.length === 0 && protos.length === 2
      ? [{ proto: null, ports: "" }]
      : protos.map((p) => ({ proto: p, ports: ports.length ? ` -m multiport --dports ${ports.join(",")}` : "" }));
  for (const set of sets)
    for (const m of matches) {
      const head = `-A ${names.chain}${m.proto ? ` -p ${m.proto}` : ""}${m.ports} -m set --match-set ${set} src`;
      if (settings.action === "drop") lines.push(`${head} -j DROP`);
      else {
        if (m.proto === null)
          lines.push(`-A ${names.chain} -p tcp -m set --match-set ${set} src -j REJECT --reject-with tcp-reset`);
        lines.push(`${head} -j REJECT --reject-with ${m.proto === "tcp" ? "tcp-reset" : unreachable}`);
      }
    }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

export interface IpsetElement {
  kind: IpsetKind;
  text: string;
  /** Seconds left, 0 for permanent. */
  timeout: number;
}

/** Reads `ipset save <set>` output for the sets in `names`. */
export function parseIpsetSave(text: string, names: IpsetNames): IpsetElement[] {
  const byName = new Map<string, IpsetKind>(IPSET_KINDS.map((k) => [names.sets[k], k]));
  const out: IpsetElement[] = [];
  for (const line of text.split("\n")) {
    const m = /^add (\S+) (\S+)(?: .*?\btimeout (\d+))?/.exec(line);
    if (!m) continue;
    const kind = byName.get(m[1]!);
    const n = normalizeCidr(m[2]!);
    if (!kind || !n) continue;
    out.push({ kind, text: n.text, timeout: m[3] === undefined ? 0 : Number(m[3]) });
  }
  return out;
}
