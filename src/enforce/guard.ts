/**
 * The last check before an address reaches a firewall command: parse and normalise it, then
 * refuse anything whose ban would hurt the host itself.
 */
import { CidrList, ipFamily, normalizeCidr, normalizeIp } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";

/** Loopback and the unspecified address: banning them breaks the host. (Mapped IPv6 is folded to IPv4 earlier.) */
const ALWAYS_REFUSED = ["127.0.0.0/8", "0.0.0.0/32", "::1/128", "::/128"];

/** Shorter prefixes than these are almost certainly typing mistakes. */
export const MIN_PREFIX = { 4: 8, 6: 32 } as const;

/** A checked target: what goes into a command, and which of the four sets it belongs to. */
export interface Target {
  /** `normalizeCidr(..).text`: a bare IP for single addresses, `net/len` otherwise. */
  text: string;
  family: 4 | 6;
  /** True for a network (prefix shorter than the full address). */
  net: boolean;
  /** Network address and prefix length. */
  ip: string;
  prefix: number;
}

export interface GuardOptions {
  /** Networks that must never be banned (config `policy.allowlist`). */
  allowlist?: Iterable<string>;
  /** The host's own addresses; re-read through this function so that new ones count. */
  hostAddresses?: () => readonly string[];
}

/** Parses a target or throws `ADDRESS_INVALID`; no refusal checks. */
export function parseTarget(raw: string): Target {
  const n = typeof raw === "string" ? normalizeCidr(raw.trim()) : null;
  if (!n) throw new SipwardenError("ADDRESS_INVALID", `not an IP address or CIDR: ${JSON.stringify(raw)}`);
  const family = ipFamily(n.ip);
  const full = family === 4 ? 32 : 128;
  return { text: n.text, family, net: n.prefix < full, ip: n.ip, prefix: n.prefix };
}

function refuse(t: Target, why: string): never {
  throw new SipwardenError("ADDRESS_REFUSED", `refusing to ban ${t.text}: ${why}`);
}

export class AddressGuard {
  private readonly fixed: CidrList;
  private readonly allow: CidrList;
  private readonly allowed: string[];
  private readonly hostAddresses: () => readonly string[];
  /** Compiled form of the last host address list, rebuilt when the provider returns a new array. */
  private own: { from: readonly string[]; list: CidrList; all: CidrList } | null = null;

  constructor(opts: GuardOptions = {}) {
    this.fixed = new CidrList(ALWAYS_REFUSED);
    this.allowed = [...(opts.allowlist ?? [])];
    this.allow = new CidrList(this.allowed);
    this.hostAddresses = opts.hostAddresses ?? (() => []);
  }

  /**
   * Returns the normalised target, or throws `ADDRESS_INVALID` / `ADDRESS_REFUSED`. A network
   * is refused when it overlaps a protected address or network in either direction.
   */
  check(raw: string): Target {
    const t = parseTarget(raw);
    if (t.prefix < MIN_PREFIX[t.family]) refuse(t, `networks wider than /${MIN_PREFIX[t.family]} are not banned`);
    // One lookup in the union decides; the reason is looked up only for a refusal. (A CidrList
    // lookup costs a couple of microseconds, which counts in a burst of 100,000 bans.)
    const own = this.ownLists();
    if (!own.all.contains(t.text)) return t;
    if (this.fixed.contains(t.text)) refuse(t, "it is a loopback or unspecified address");
    if (this.allow.contains(t.text)) refuse(t, "it is in the allowlist");
    if (own.list.contains(t.text)) refuse(t, "it is one of this host's own addresses");
    return t;
  }

  private ownLists(): { list: CidrList; all: CidrList } {
    const from = this.hostAddresses();
    const prev = this.own;
    if (prev && (prev.from === from || (prev.from.length === from.length && prev.from.every((a, i) => a === from[i]))))
      return prev;
    const mine: string[] = [];
    // Only the address itself: an interface's on-link network is the neighbours', not ours.
    for (const a of from) {
      const ip = normalizeIp(a.split("/")[0] ?? "");
      if (ip) mine.push(ip);
    }
    this.own = {
      from,
      list: new CidrList(mine),
      all: new CidrList([...ALWAYS_REFUSED, ...this.allowed, ...mine]),
    };
    return this.own;
  }
}
