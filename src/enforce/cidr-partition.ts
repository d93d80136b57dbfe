/**
 * Network bans in an nft interval set. The kernel refuses overlapping intervals, while bans
 * may nest (a /24 ban, and a longer one on a /25 inside it). So the set holds a partition of
 * the banned space: disjoint networks, each carrying the latest expiry of the bans that cover
 * it. Every address then stays blocked exactly as long as its longest covering ban, and the
 * kernel's own timeouts still end every piece on time, with no timer of ours.
 */
import ipaddr from "ipaddr.js";

/** Expiry in epoch ms, null for permanent. */
export type Expiry = number | null;

export interface Net {
  family: 4 | 6;
  /** Network address as an integer. */
  base: bigint;
  prefix: number;
}

export interface NetBan extends Net {
  expiresAt: Expiry;
}

const WIDTH = { 4: 32, 6: 128 } as const;

export function laterExpiry(a: Expiry | undefined, b: Expiry): Expiry {
  if (a === undefined) return b;
  if (a === null || b === null) return null;
  return a > b ? a : b;
}

export function netFromText(text: string): Net {
  const slash = text.indexOf("/");
  const ip = slash < 0 ? text : text.slice(0, slash);
  const addr = ipaddr.parse(ip);
  const family = addr.kind() === "ipv4" ? 4 : 6;
  const prefix = slash < 0 ? WIDTH[family] : Number(text.slice(slash + 1));
  let base = 0n;
  for (const byte of addr.toByteArray()) base = (base << 8n) | BigInt(byte);
  return { family, base: base & mask(family, prefix), prefix };
}

/** The same text `normalizeCidr` produces: a bare address for a full-length prefix. */
export function netToText(n: Net): string {
  const bytes: number[] = [];
  let v = n.base;
  for (let i = 0; i < WIDTH[n.family] / 8; i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  const ip = ipaddr.fromByteArray(bytes).toString();
  return n.prefix === WIDTH[n.family] ? ip : `${ip}/${n.prefix}`;
}

function mask(family: 4 | 6, prefix: number): bigint {
  const w = WIDTH[family];
  return ((1n << BigInt(prefix)) - 1n) << BigInt(w - prefix);
}

/** True when `inner` lies inside `outer` (or equals it). */
export function covers(outer: Net, inner: Net): boolean {
  return (
    outer.family === inner.family &&
    outer.prefix <= inner.prefix &&
    (inner.base & mask(outer.family, outer.prefix)) === outer.base
  );
}

/**
 * Splits `region` into disjoint pieces. `bans` must all lie inside `region`; `inherited` is
 * the expiry of a ban covering the whole region (undefined when none does).
 */
function part(region: Net, inherited: Expiry | undefined, bans: NetBan[], out: NetBan[]): void {
  let e = inherited;
  const inside: NetBan[] = [];
  for (const b of bans) {
    if (b.prefix === region.prefix) e = laterExpiry(e, b.expiresAt);
    else inside.push(b);
  }
  if (inside.length === 0) {
    if (e !== undefined) out.push({ ...region, expiresAt: e });
    return;
  }
  const w = WIDTH[region.family];
  const bit = 1n << BigInt(w - region.prefix - 1);
  const lo: NetBan[] = [];
  const hi: NetBan[] = [];
  for (const b of inside) ((b.base & bit) === 0n ? lo : hi).push(b);
  const start = out.length;
  part({ family: region.family, base: region.base, prefix: region.prefix + 1 }, e, lo, out);
  part({ family: region.family, base: region.base | bit, prefix: region.prefix + 1 }, e, hi, out);
  // Inner bans that do not outlast the covering one change nothing: fold the halves back.
  const a = out[start];
  const b = out[start + 1];
  if (
    e !== undefined &&
    out.length === start + 2 &&
    a?.prefix === region.prefix + 1 &&
    b?.prefix === region.prefix + 1 &&
    a.expiresAt === b.expiresAt
  ) {
    out.length = start;
    out.push({ ...region, expiresAt: a.expiresAt });
  }
}

/** The partition of a set of (possibly nested) network bans of one family or both. */
export function partition(bans: readonly NetBan[]): NetBan[] {
  const sorted = [...bans].sort((x, y) =>
    x.family !== y.family ? x.family - y.family : x.base !== y.base ? (x.base < y.base ? -1 : 1) : x.prefix - y.prefix,
  );
  const out: NetBan[] = [];
  let i = 0;
  while (i < sorted.length) {
    const root = sorted[i]!;
    const group: NetBan[] = [root];
    let j = i + 1;
    while (j < sorted.length && covers(root, sorted[j]!)) group.push(sorted[j++]!);
    part(root, undefined, group, out);
    i = j;
  }
  return out;
}

/** What to write to the kernel for one change: pieces to delete, then pieces to add. */
export interface PieceDiff {
  remove: NetBan[];
  add: NetBan[];
}

type Journal = Array<() => void>;

/** Network buckets by prefix length, so that lookups only visit lengths in use. */
class NetIndex {
  readonly byPrefix = new Map<string, Map<bigint, NetBan>>();

  private key(n: Net): string {
    return `${n.family}/${n.prefix}`;
  }

  get(n: Net): NetBan | undefined {
    return this.byPrefix.get(this.key(n))?.get(n.base);
  }

  set(b: NetBan, journal?: Journal): void {
    const k = this.key(b);
    let m = this.byPrefix.get(k);
    if (!m) {
      m = new Map();
      this.byPrefix.set(k, m);
    }
    const prev = m.get(b.base);
    m.set(b.base, b);
    journal?.push(() => (prev ? this.set(prev) : this.delete(b)));
  }

  delete(n: Net, journal?: Journal): void {
    const m = this.byPrefix.get(this.key(n));
    const prev = m?.get(n.base);
    if (!m || !prev) return;
    m.delete(n.base);
    journal?.push(() => this.set(prev));
  }

  /** The widest entry covering `n` (or `n` itself when present). */
  widestCovering(n: Net): NetBan | undefined {
    let best: NetBan | undefined;
    for (const [k, m] of this.byPrefix) {
      const [fam, len] = k.split("/").map(Number) as [number, number];
      if (fam !== n.family || len > n.prefix || (best && len >= best.prefix)) continue;
      const hit = m.get(n.base & mask(n.family, len));
      if (hit) best = hit;
    }
    return best;
  }

  /** Every entry inside `region` (including one equal to it). */
  inside(region: Net): NetBan[] {
    const out: NetBan[] = [];
    for (const [k, m] of this.byPrefix) {
      const [fam, len] = k.split("/").map(Number) as [number, number];
      if (fam !== region.family || len < region.prefix) continue;
      if (len === region.prefix) {
        const hit = m.get(region.base);
        if (hit) out.push(hit);
        continue;
      }
      for (const b of m.values()) if (covers(region, b)) out.push(b);
    }
    return out;
  }

  all(): NetBan[] {
    const out: NetBan[] = [];
    for (const m of this.byPrefix.values()) out.push(...m.values());
    return out;
  }

  clear(): void {
    this.byPrefix.clear();
  }
}

/**
 * The network bans (logical, as the store has them) and the pieces the kernel holds, kept in
 * step. Changes are journalled so that a failed transaction can be rolled back.
 */
export class NetModel {
  private readonly bans = new NetIndex();
  private readonly pieces = new NetIndex();
  private journal: Journal = [];

  /** Starts from what the kernel holds: each piece is taken for a ban of its own. */
  load(kernelPieces: readonly NetBan[]): void {
    this.bans.clear();
    this.pieces.clear();
    this.journal = [];
    for (const p of kernelPieces) {
      this.bans.set(p);
      this.pieces.set(p);
    }
  }

  /** Replaces the logical bans and records `pieces` as what the kernel now holds. */
  replace(bans: readonly NetBan[], pieces: readonly NetBan[]): void {
    this.bans.clear();
    this.pieces.clear();
    this.journal = [];
    for (const b of bans) this.bans.set(b);
    for (const p of pieces) this.pieces.set(p);
  }

  /** Keeps the logical bans but takes the kernel's word for the pieces (after a failure). */
  resyncPieces(kernelPieces: readonly NetBan[]): void {
    this.pieces.clear();
    this.journal = [];
    for (const p of kernelPieces) this.pieces.set(p);
  }

  /** Adds (or re-times) a network ban and returns the kernel change it needs. */
  add(ban: NetBan): PieceDiff {
    this.bans.set(ban, this.journal);
    return this.refresh(ban);
  }

  /** Removes a network ban; a ban that is not held changes nothing. */
  remove(n: Net): PieceDiff {
    if (!this.bans.get(n)) return { remove: [], add: [] };
    this.bans.delete(n, this.journal);
    return this.refresh(n);
  }

  private refresh(n: Net): PieceDiff {
    const roots = [this.bans.widestCovering(n), this.pieces.widestCovering(n), n].filter(
      (x): x is NetBan => x !== undefined,
    );
    let region: Net = n;
    for (const r of roots) if (r.prefix < region.prefix) region = r;
    const want = partition(this.bans.inside(region));
    const have = this.pieces.inside(region);
    const diff: PieceDiff = { remove: [], add: [] };
    const wantByKey = new Map(want.map((p) => [`${p.prefix}/${p.base}`, p]));
    for (const h of have) {
      const w = wantByKey.get(`${h.prefix}/${h.base}`);
      if (w && w.expiresAt === h.expiresAt) wantByKey.delete(`${h.prefix}/${h.base}`);
      else {
        diff.remove.push(h);
        this.pieces.delete(h, this.journal);
      }
    }
    for (const w of wantByKey.values()) {
      diff.add.push(w);
      this.pieces.set(w, this.journal);
    }
    return diff;
  }

  /** Forgets the changes since the last commit (their transaction failed). */
  rollback(): void {
    for (const undo of this.journal.splice(0).reverse()) undo();
  }

  commit(): void {
    this.journal = [];
  }

  logical(): NetBan[] {
    return this.bans.all();
  }

  kernel(): NetBan[] {
    return this.pieces.all();
  }
}
