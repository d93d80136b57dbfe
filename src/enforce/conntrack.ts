/**
 * Deletes a banned address's conntrack entries. A set entry stops new packets at the raw hook,
 * but an existing entry keeps a flow "established" for every later hook and for replies; the
 * flush ends that. It takes 10 to 110 ms depending on the table size, so it runs after the set
 * entry landed, off the ban's critical path, one flush at a time, and a failure is reported
 * without holding up later bans.
 */
import ipaddr from "ipaddr.js";
import { CidrList, normalizeIp } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import type { Target } from "./guard.js";
import { clipStderr, netnsPrefix, runCommand } from "./run.js";

export interface ConntrackOptions {
  netns?: string;
  onError?: (err: SipwardenError) => void;
  onWarn?: (message: string) => void;
  /** Called after each flush with the number of entries it deleted (null when it failed). */
  onFlushed?: (target: string, deleted: number | null, ms: number) => void;
}

/**
 * The argv lists that delete `t`'s entries in both directions: flows it opened (original
 * source) and flows opened towards it (original destination, which is the reply source). The
 * reply destination of a flow the address opened is the address itself unless it was
 * source-NATed, so the two lists cover every flow the address is part of.
 */
export function conntrackArgs(t: Target): string[][] {
  const fam = t.family === 6 ? ["-f", "ipv6"] : [];
  const maskOf = () => {
    const m =
      t.family === 4
        ? ipaddr.IPv4.subnetMaskFromPrefixLength(t.prefix)
        : ipaddr.IPv6.subnetMaskFromPrefixLength(t.prefix);
    return m.toString();
  };
  const src = ["conntrack", "-D", ...fam, "--orig-src", t.ip];
  const dst = ["conntrack", "-D", ...fam, "--orig-dst", t.ip];
  if (t.net) {
    src.push("--mask-src", maskOf());
    dst.push("--mask-dst", maskOf());
  }
  return [src, dst];
}

/** Entries deleted, from conntrack's "N flow entries have been deleted" line. */
export function parseDeleted(output: string): number {
  const m = /(\d+) flow entries have been deleted/.exec(output);
  return m ? Number(m[1]) : 0;
}

/** Original source and destination of every flow in `conntrack -L` output. */
export function flowAddresses(listing: string): string[] {
  const out: string[] = [];
  for (const line of listing.split("\n")) {
    const m = /\bsrc=(\S+) dst=(\S+)/.exec(line);
    if (!m) continue;
    for (const raw of [m[1]!, m[2]!]) {
      const ip = normalizeIp(raw);
      if (ip) out.push(ip);
    }
  }
  return out;
}

/** From this many queued flushes on, one listing first decides which are needed. */
const BULK_AT = 4;
/**
 * After a bulk round, wait this long for more bans to queue before the next one: during a burst
 * of bans each round then covers ~100 ms of bans with one listing, instead of one or two
 * `conntrack` processes per ban (every spawn also costs the daemon's own thread a moment).
 * Set entries already stop new packets; this only delays the end of established flows.
 */
const COALESCE_MS = 100;

export class ConntrackFlusher {
  private readonly queue: Target[] = [];
  private readonly queued = new Set<string>();
  private worker: Promise<void> | null = null;
  private disabled = false;
  private readonly prefix: string[];

  constructor(private readonly opts: ConntrackOptions = {}) {
    this.prefix = netnsPrefix(opts.netns);
  }

  /** Queues a flush; a target already queued is not queued twice. Never throws. */
  flush(t: Target): void {
    if (this.disabled || this.queued.has(t.text)) return;
    this.queued.add(t.text);
    this.queue.push(t);
    // Not in this turn: spawning blocks the event loop for a moment, and the ban's own
    // promise must settle first.
    if (!this.worker) this.worker = new Promise<void>((r) => setImmediate(r)).then(() => this.work());
  }

  /** Resolves once every queued flush has run. */
  async drain(): Promise<void> {
    while (this.worker) await this.worker;
  }

  private async work(): Promise<void> {
    let bulk = false;
    try {
      while (this.queue.length > 0) {
        if (bulk) await new Promise((r) => setTimeout(r, COALESCE_MS));
        bulk = this.queue.length >= BULK_AT;
        if (bulk) {
          // A burst: one listing tells which addresses have flows at all, so that only those
          // pay for a delete (each delete walks the whole table).
          const batch = this.queue.splice(0);
          this.queued.clear();
          const present = await this.withFlows(batch);
          for (const t of batch) {
            if (present === null || present.has(t.text)) await this.flushOne(t);
            else this.opts.onFlushed?.(t.text, 0, 0);
          }
          continue;
        }
        const t = this.queue.shift()!;
        this.queued.delete(t.text);
        await this.flushOne(t);
      }
    } finally {
      this.worker = null;
    }
  }

  /** Which of `targets` appear in a flow now; null when the table cannot be listed. */
  private async withFlows(targets: readonly Target[]): Promise<Set<string> | null> {
    const addrs = new Set<string>();
    for (const family of [4, 6] as const) {
      if (!targets.some((t) => t.family === family)) continue;
      const r = await runCommand([...this.prefix, "conntrack", "-L", ...(family === 6 ? ["-f", "ipv6"] : [])], {
        timeoutMs: 60_000,
      });
      if (r.code !== 0) return null;
      for (const a of flowAddresses(r.stdout)) addrs.add(a);
    }
    const found = new Set<string>();
    const nets = targets.filter((t) => t.net);
    for (const t of targets) if (!t.net && addrs.has(t.text)) found.add(t.text);
    if (nets.length > 0) {
      const any = new CidrList(nets.map((n) => n.text));
      const each = nets.map((n) => [n.text, new CidrList([n.text])] as const);
      for (const a of addrs) {
        if (!any.contains(a)) continue;
        for (const [text, one] of each) if (!found.has(text) && one.contains(a)) found.add(text);
      }
    }
    return found;
  }

  private async flushOne(t: Target): Promise<void> {
    const started = performance.now();
    let deleted = 0;
    try {
      for (const argv of conntrackArgs(t)) {
        const r = await runCommand([...this.prefix, ...argv], { timeoutMs: 30_000 });
        // Exit 1 with "0 flow entries" only means that nothing matched.
        if (r.code === 0 || (r.code === 1 && /\b0 flow entries/.test(r.stderr + r.stdout))) {
          deleted += parseDeleted(r.stderr + r.stdout);
          continue;
        }
        if (/exec of "conntrack" failed/.test(r.stderr))
          throw new SipwardenError("ENFORCER_UNAVAILABLE", "conntrack is not installed");
        throw new SipwardenError(
          "ENFORCER_FAILED",
          `conntrack flush for ${t.text} failed (exit ${r.code}): ${clipStderr(r.stderr)}`,
        );
      }
      this.opts.onFlushed?.(t.text, deleted, performance.now() - started);
    } catch (e) {
      if (e instanceof SipwardenError && e.code === "ENFORCER_UNAVAILABLE") {
        this.disabled = true;
        this.queue.length = 0;
        this.queued.clear();
        this.opts.onWarn?.(`conntrack is not available (${e.message}); established flows are not flushed`);
      } else {
        this.opts.onError?.(
          e instanceof SipwardenError ? e : new SipwardenError("ENFORCER_FAILED", String(e), { cause: e }),
        );
      }
      this.opts.onFlushed?.(t.text, null, performance.now() - started);
    }
  }
}
