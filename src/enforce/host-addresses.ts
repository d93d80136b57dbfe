/**
 * The host's own interface addresses, which are never banned. Read at start and again in the
 * background when the copy is older than `refreshMs` (a DHCP lease or a new VPN interface).
 */
import { normalizeIp } from "../core/address.js";
import { hostAddresses as localAddresses } from "../core/host-addresses.js";
import { runCommand } from "./run.js";

export interface HostAddressOptions {
  /** Read the addresses of this network namespace instead of our own. */
  netns?: string;
  refreshMs?: number;
  now?: () => number;
}

/** Addresses from `ip -j addr show` output. */
export function parseIpAddrJson(text: string): string[] {
  const out = new Set<string>();
  const data = JSON.parse(text) as Array<{ addr_info?: Array<{ local?: unknown }> }>;
  for (const link of Array.isArray(data) ? data : [])
    for (const a of link.addr_info ?? []) {
      const ip = typeof a.local === "string" ? normalizeIp(a.local) : null;
      if (ip) out.add(ip);
    }
  return [...out];
}

export class HostAddresses {
  private current: readonly string[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | null = null;
  private readonly refreshMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: HostAddressOptions = {}) {
    this.refreshMs = opts.refreshMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  /** Reads the addresses now. */
  async refresh(): Promise<void> {
    if (this.opts.netns === undefined) this.current = localAddresses();
    else {
      const r = await runCommand(["ip", "-n", this.opts.netns, "-j", "addr", "show"], { timeoutMs: 10_000 });
      if (r.code === 0) this.current = parseIpAddrJson(r.stdout);
    }
    this.readAt = this.now();
  }

  /** The last copy (the same array until it changes), refreshed in the background when stale. */
  get = (): readonly string[] => {
    if (this.now() - this.readAt > this.refreshMs && !this.refreshing) {
      if (this.opts.netns === undefined) {
        // Cheap and synchronous: no reason to serve a stale copy.
        const next = localAddresses();
        if (next.join() !== this.current.join()) this.current = next;
        this.readAt = this.now();
      } else {
        this.refreshing = this.refresh()
          .catch(() => {})
          .finally(() => {
            this.refreshing = null;
          });
      }
    }
    return this.current;
  };
}
