/**
 * Strict IP literal handling. Every address that reaches a rule, the store or a firewall
 * command passes through here first. Names are never resolved.
 */
import ipaddr from "ipaddr.js";
import { ownString } from "./strings.js";

/** The strict IPv4 syntax (v4Value below implements it by hand; a test holds the two equal). */
export const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Parsing an IPv6 literal takes a microsecond or more; attackers repeat their addresses,
 * so the last few thousand results are kept, keyed by a hash of the literal's text computed in
 * place (no slice, no regex on a hit) and checked character by character against the stored
 * text. Cleared when full (bounded memory, no LRU bookkeeping).
 */
const V6_CACHE_MAX = 4096;
interface V6Entry {
  readonly raw: string;
  readonly out: string | null;
}
const v6Cache = new Map<number, V6Entry>();

/**
 * An IPv6 literal (already limited to [0-9A-Fa-f:.]) in RFC 5952 form, IPv4-mapped folded to
 * IPv4, or null. The WHATWG URL host parser (native code in Node) validates and serialises
 * exactly as RFC 5952 does, several times faster than ipaddr.js and with no JavaScript for
 * V8 to compile; a property test holds it equal to ipaddr.js. One deliberate difference: the
 * deprecated IPv4-compatible `::a.b.c.d` stays the IPv6 address it is (RFC 4291; glibc's
 * inet_ntop prints ::102:304 that way), where ipaddr.js reads it as IPv4-mapped.
 */
function normalizeV6(s: string): string | null {
  let host: string;
  try {
    host = new URL(`http://[${s}]/`).hostname;
  } catch {
    return null;
  }
  const v6 = host.slice(1, -1);
  // ::ffff:0:0/96, which the serialiser prints as "::ffff:" and the last two groups.
  if (v6.startsWith("::ffff:")) {
    const m = MAPPED.exec(v6);
    if (m) {
      const hi = Number.parseInt(m[1]!, 16);
      const lo = Number.parseInt(m[2]!, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return v6;
}
const MAPPED = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

function sameText(raw: string, s: string, from: number, to: number): boolean {
  if (raw.length !== to - from) return false;
  for (let i = from; i < to; i++) if (raw.charCodeAt(i - from) !== s.charCodeAt(i)) return false;
  return true;
}

/** True when s[from, to) holds only [0-9A-Fa-f:.] and at least one ":". */
function v6Chars(s: string, from: number, to: number): boolean {
  let colon = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) colon = true;
    else if (!((c >= 48 && c <= 57) || c === 46 || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false;
  }
  return colon;
}

/**
 * s[from, to) as a normalised IPv6 (or IPv4-mapped → IPv4) literal, or null. Only the
 * characters [0-9A-Fa-f:.] with at least one ":" get as far as the parser.
 *
 * The cache key hashes the length and the first 4 and last 8 characters only (addresses of one
 * attacker differ at the end); a hit is confirmed by comparing the whole text with the stored
 * literal, which was validated when it was stored, so a hit needs no further check. Two
 * literals with the same key just replace each other in the cache.
 */
function v6At(s: string, from: number, to: number): string | null {
  const n = to - from;
  let h = n;
  const head = from + (n < 4 ? n : 4);
  for (let i = from; i < head; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  for (let i = to - 8 > head ? to - 8 : head; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  const hit = v6Cache.get(h);
  if (hit !== undefined && sameText(hit.raw, s, from, to)) return hit.out;
  if (!v6Chars(s, from, to)) return null;
  // A copy, not a slice: a slice would keep the whole line alive in the cache.
  const raw = ownString(s.slice(from, to));
  const out = normalizeV6(raw);
  if (v6Cache.size >= V6_CACHE_MAX) v6Cache.clear();
  v6Cache.set(h, { raw, out });
  return out;
}

/**
 * Normalises an IP literal: IPv4 as dotted quad, IPv6 compressed and lower-case, IPv4-mapped
 * IPv6 folded to IPv4, brackets removed. Returns null for anything that is not an IP literal.
 */
export function normalizeIp(raw: string): string | null {
  return normalizeIpAt(raw, 0, raw.length);
}

/**
 * Interned dotted quads by value: the parsers meet the same few thousand attacker addresses on
 * every line, and handing out one string per address makes every later Map lookup (report,
 * detector, policy) hit a string whose hash is already computed. Cleared when full.
 */
const V4_INTERN_MAX = 65_536;
const v4Intern = new Map<number, string>();

/**
 * The value of a strict dotted quad in s[from, to) (no leading zeros, each part 0–255: exactly
 * the V4 pattern above), or -1.
 */
function v4Value(s: string, from: number, to: number): number {
  if (to - from < 7 || to - from > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      const d = c - 48;
      if (d < 0 || d > 9 || (digits === 1 && part === 0)) return -1;
      part = part * 10 + d;
      if (part > 255) return -1;
      digits++;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

function internV4(value: number): string {
  // As an int32, the key is a small integer: a value past 2³¹ would be a boxed double.
  const key = value | 0;
  let s = v4Intern.get(key);
  if (s === undefined) {
    s = `${Math.floor(value / 16777216)}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
    if (v4Intern.size >= V4_INTERN_MAX) v4Intern.clear();
    v4Intern.set(key, s);
  }
  return s;
}

/** normalizeIp on s[from, to), without slicing an IPv4 literal out first. */
export function normalizeIpAt(s: string, from: number, to: number): string | null {
  if (to - from > 2 && s.charCodeAt(from) === 91 /* [ */ && s.charCodeAt(to - 1) === 93) {
    from++;
    to--;
  }
  const v4 = v4Value(s, from, to);
  if (v4 >= 0) return internV4(v4);
  const n = to - from;
  if (n < 2 || n > 45) return null;
  return v6At(s, from, to);
}

export function ipFamily(ip: string): 4 | 6 {
  return ip.includes(":") ? 6 : 4;
}

/**
 * Splits `ip:port` or `[v6]:port`. A bare IPv6 with a trailing `:port` is ambiguous
 * (`2001:db8::66:5060`) and is rejected.
 */
export function splitHostPort(s: string): { ip: string; port: number } | null {
  let host: string;
  let portStr: string;
  if (s.charCodeAt(0) === 91) {
    const end = s.indexOf("]:");
    if (end < 0) return null;
    host = s.slice(1, end);
    portStr = s.slice(end + 2);
  } else {
    const i = s.lastIndexOf(":");
    if (i < 0) return null;
    host = s.slice(0, i);
    if (host.includes(":")) return null;
    portStr = s.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(portStr)) return null;
  const port = Number(portStr);
  if (port > 65535) return null;
  const ip = normalizeIp(host);
  return ip ? { ip, port } : null;
}

/** A normalised network `addr/len`, or null when `s` is neither an IP nor a CIDR. */
export function normalizeCidr(s: string): { ip: string; prefix: number; text: string } | null {
  const slash = s.indexOf("/");
  if (slash < 0) {
    const ip = normalizeIp(s);
    if (!ip) return null;
    const prefix = ipFamily(ip) === 4 ? 32 : 128;
    return { ip, prefix, text: ip };
  }
  const ip = normalizeIp(s.slice(0, slash));
  const lenStr = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenStr)) return null;
  const prefix = Number(lenStr);
  const max = ipFamily(ip) === 4 ? 32 : 128;
  if (prefix > max) return null;
  const base =
    ipFamily(ip) === 4
      ? ipaddr.IPv4.networkAddressFromCIDR(`${ip}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${ip}/${prefix}`);
  const text = prefix === max ? ip : `${base.toString()}/${prefix}`;
  return { ip: base.toString(), prefix, text };
}

/** Answers a CidrList keeps (per list) before it starts afresh; cleared whenever the list changes. */
const CIDR_MEMO_MAX = 4096;

/** A compiled allow/deny list of CIDRs, matched with ipaddr.js. */
export class CidrList {
  private readonly v4: [ipaddr.IPv4, number][] = [];
  private readonly v6: [ipaddr.IPv6, number][] = [];
  /**
   * contains() answers by query text: the detector asks about the same few attacker addresses
   * on every decision, and each uncached answer parses the address with ipaddr.js.
   */
  private readonly memo = new Map<string, boolean>();

  constructor(cidrs: Iterable<string> = []) {
    for (const c of cidrs) this.add(c);
  }

  add(cidr: string): void {
    const n = normalizeCidr(cidr);
    if (!n) throw new RangeError(`not an IP address or CIDR: ${JSON.stringify(cidr)}`);
    const addr = ipaddr.parse(n.ip);
    if (addr.kind() === "ipv4") this.v4.push([addr as ipaddr.IPv4, n.prefix]);
    else this.v6.push([addr as ipaddr.IPv6, n.prefix]);
    this.memo.clear();
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  /** True when the (normalised) ip, or any address of the given network, lies in the list. */
  contains(ip: string): boolean {
    let hit = this.memo.get(ip);
    if (hit === undefined) {
      hit = this.lookup(ip);
      if (this.memo.size >= CIDR_MEMO_MAX) this.memo.clear();
      this.memo.set(ip, hit);
    }
    return hit;
  }

  private lookup(ip: string): boolean {
    const n = normalizeCidr(ip);
    if (!n) return false;
    const addr = ipaddr.parse(n.ip);
    if (addr.kind() === "ipv4") {
      for (const [net, len] of this.v4) if ((addr as ipaddr.IPv4).match(net, Math.min(len, n.prefix))) return true;
    } else {
      for (const [net, len] of this.v6) if ((addr as ipaddr.IPv6).match(net, Math.min(len, n.prefix))) return true;
    }
    return false;
  }
}
