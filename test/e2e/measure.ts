/**
 * What the e2e test measures: Kamailio's log lines per attacker, Kamailio's received requests
 * per source (polled), the drop counters of sipwarden's `inet sipwarden` table, and bans.
 */
import type { BanInfo } from "../../src/api/types.js";
import type { Kamailio } from "./kamailio.js";
import { run, sleep } from "./procs.js";

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Log lines with a trailing CR removed (many line readers do the same). */
export function logLines(log: string): string[] {
  return log.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

/** `IPS: auth-failed` lines whose trusted tail (the end of the line) names `ip`. */
export function authFailures(lines: readonly string[], ip: string): { rc: number; user: string }[] {
  const re = new RegExp(
    `IPS: auth-failed rc=(-?\\d+) method=\\S+ user=(\\S*) .* src_ip=${esc(ip)} src_port=\\d+ proto=[a-z]+$`,
  );
  const out: { rc: number; user: string }[] = [];
  for (const l of lines) {
    const m = re.exec(l);
    if (m) out.push({ rc: Number(m[1]), user: m[2]! });
  }
  return out;
}

export function scannerLines(lines: readonly string[], ip: string): string[] {
  const re = new RegExp(`IPS: scanner ua=\\[.*\\] method=\\S+ src_ip=${esc(ip)} src_port=\\d+ proto=[a-z]+$`);
  return lines.filter((l) => re.test(l));
}

export function pikeBlocks(lines: readonly string[], ip: string): string[] {
  const re = new RegExp(`PIKE - BLOCKing ip ${esc(ip)}, node=0x[0-9a-f]+$`);
  return lines.filter((l) => re.test(l));
}

/** Lines that END with `[SIP-FIREWALL][FAIL2BAN] <ip>`, wherever that text came from. */
export function firewallTail(lines: readonly string[], ip: string): string[] {
  const re = new RegExp(`\\[SIP-FIREWALL\\]\\[FAIL2BAN\\] ${esc(ip)}$`);
  return lines.filter((l) => re.test(l));
}

// ---------------------------------------------------------------------------------------------
// nftables: the drop counters of sipwarden's table

export interface NftDrops {
  /** Packets counted by the table's rules (a rule counter, or per-element counters). */
  total: number;
  /** Per banned address, when the set elements carry counters. */
  byIp: Map<string, number>;
  /** True when the table exists but no counter was found in it. */
  noCounters: boolean;
}

type Json = unknown;

function walk(v: Json, fn: (o: Record<string, Json>) => void): void {
  if (Array.isArray(v)) for (const x of v) walk(x, fn);
  else if (v && typeof v === "object") {
    fn(v as Record<string, Json>);
    for (const x of Object.values(v)) walk(x, fn);
  }
}

/** Reads `nft -j list table inet sipwarden` in the PBX namespace; null when the table is absent. */
export async function sipwardenDrops(ns: string): Promise<NftDrops | null> {
  const r = await run("nft", ["-j", "list", "table", "inet", "sipwarden"], { ns, timeoutMs: 5000, maxOutput: 4 << 20 });
  if (r.code !== 0) return null;
  return parseNftDrops(JSON.parse(r.stdout) as Json);
}

/** The counting part of sipwardenDrops, separate so that it can be tested without root. */
export function parseNftDrops(doc: Json): NftDrops {
  let ruleTotal = 0;
  let ruleCounters = 0;
  const byIp = new Map<string, number>();
  walk(doc, (o) => {
    const rule = o.rule as { expr?: Json[] } | undefined;
    if (rule?.expr) {
      const verdictDrops = rule.expr.some((e) => e && typeof e === "object" && ("drop" in e || "reject" in e));
      for (const e of rule.expr) {
        const c = (e as { counter?: { packets?: number } }).counter;
        if (c && typeof c.packets === "number" && verdictDrops) {
          ruleTotal += c.packets;
          ruleCounters++;
        }
      }
    }
    const elem = o.elem as { val?: Json; counter?: { packets?: number } } | undefined;
    if (elem && typeof elem.counter?.packets === "number") {
      const val = typeof elem.val === "string" ? elem.val : JSON.stringify(elem.val);
      byIp.set(val, (byIp.get(val) ?? 0) + elem.counter.packets);
    }
  });
  const elemTotal = [...byIp.values()].reduce((a, b) => a + b, 0);
  return {
    total: ruleCounters > 0 ? ruleTotal : elemTotal,
    byIp,
    noCounters: ruleCounters === 0 && byIp.size === 0,
  };
}

// ---------------------------------------------------------------------------------------------
// The monitor: polls Kamailio's per-source counts (and the bans, when a defender runs)

export interface BanSeen {
  ban: BanInfo;
  /** When the monitor first saw it (ms since epoch). */
  seenAt: number;
}

export class Monitor {
  /** When each source address's first request reached Kamailio (recorded by the cfg itself). */
  readonly firstSeen = new Map<string, number>();
  readonly bans = new Map<string, BanSeen>();
  /** Every ban ever listed for an address that must never be banned. */
  readonly forbidden: BanInfo[] = [];
  readonly errors: string[] = [];
  received = new Map<string, number>();
  #stop = false;
  #loop: Promise<void> | null = null;

  constructor(
    readonly kamailio: Kamailio,
    readonly listBans: (() => Promise<BanInfo[]>) | null,
    readonly neverBan: readonly string[],
    readonly everyMs = 50,
  ) {}

  start(): this {
    this.#loop = (async () => {
      while (!this.#stop) {
        await this.poll();
        await sleep(this.everyMs);
      }
    })();
    return this;
  }

  async poll(): Promise<void> {
    try {
      this.received = await this.kamailio.received();
      if ([...this.received.keys()].some((ip) => !this.firstSeen.has(ip)))
        for (const [ip, at] of await this.kamailio.firstRequests())
          if (!this.firstSeen.has(ip)) this.firstSeen.set(ip, at);
    } catch (e) {
      this.errors.push(`kamcmd: ${(e as Error).message}`);
    }
    if (!this.listBans) return;
    try {
      for (const b of await this.listBans()) {
        if (!this.bans.has(b.ip)) this.bans.set(b.ip, { ban: b, seenAt: Date.now() });
        if (this.neverBan.some((ip) => b.ip === ip || b.ip === `${ip}/32`)) this.forbidden.push(b);
      }
    } catch (e) {
      this.errors.push(`bans: ${(e as Error).message}`);
    }
  }

  /** The ban of `ip` (exact address or its /32), waiting up to `timeoutMs` for it. */
  async waitForBan(ip: string, timeoutMs: number): Promise<BanSeen | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const b = this.bans.get(ip) ?? this.bans.get(`${ip}/32`);
      if (b || Date.now() >= end) return b;
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }
}

/**
 * Time from an attacker's first request (as Kamailio stamped it) to its ban: the ban's own
 * `since`, or the poll that first listed it when `since` is unusable (the polls are 50 ms apart).
 */
export function timeToBan(firstRequest: number | undefined, b: BanSeen): number | null {
  if (firstRequest === undefined) return null;
  const since = Date.parse(b.ban.since);
  const at = Number.isFinite(since) && Math.abs(since - b.seenAt) < 5000 ? Math.min(since, b.seenAt) : b.seenAt;
  return Math.max(0, at - firstRequest);
}
