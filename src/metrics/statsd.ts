/**
 * StatsD output through hot-shots, with in-process aggregation in front of it.
 *
 * hot-shots costs several microseconds per call (string building, a byte count of the whole
 * buffer, a socket write per full buffer), which is more than parsing a line costs. So the hot
 * path only bumps a number (a cached cell, or a slot of a typed-array table per address); every
 * `flushMs` the counts that moved are handed to hot-shots as one `name:N|c` each, and hot-shots packs them, newline-separated, into datagrams
 * of at most `maxBufferSize` bytes. For a StatsD server this is the same as N separate `:1|c`
 * (it sums counters over its own flush interval), at a fraction of the packets.
 */
import StatsDClient, { type StatsD } from "hot-shots";
import type { Remote, Transport } from "../core/events.js";
import { IntCounts } from "./int-counts.js";

export interface StatsdOptions {
  host: string;
  port: number;
  /** Prepended with a dot, e.g. `security` gives `security.failed_auth...`; empty for none. */
  prefix: string;
  /** How often aggregated counts are sent. */
  flushMs?: number;
  /** Largest datagram hot-shots builds (bytes); 1432 fits a 1500-byte MTU with room to spare. */
  maxBufferSize?: number;
  /** Send failures (DNS, socket); called at most once per failure, never throws into the caller. */
  onError?(err: Error): void;
}

interface Cell {
  readonly name: string;
  n: number;
}

interface ServiceCells {
  /** 1-based; with the transport it makes the count tables' tag. */
  readonly id: number;
  readonly stem: string;
  readonly count: Cell;
}

/** Transports as small numbers for the count tables' tag (0: unknown). */
const TRANSPORTS: readonly (Transport | undefined)[] = [undefined, "udp", "tcp", "tls", "ws", "wss", "sctp"];

function transportId(t: Transport | undefined): number {
  switch (t) {
    case "udp":
      return 1;
    case "tcp":
      return 2;
    case "tls":
      return 3;
    case "ws":
      return 4;
    case "wss":
      return 5;
    case "sctp":
      return 6;
    default:
      return 0;
  }
}

/** Service names become one StatsD path component: letters, digits and `_` only. */
export function statsdComponent(s: string, allowDash = false): string {
  const out = s.replace(allowDash ? /[^A-Za-z0-9_-]/g : /[^A-Za-z0-9_]/g, "_");
  return out.length > 0 ? out : "unknown";
}

/**
 * Asterisk's address form (`IPV4/UDP/198.51.100.23/5060`, formats.md §1.2) made safe for
 * StatsD: the port dropped and the address separators replaced by `_`, because `.` separates
 * path components and `:` separates name from value. IPv4 dots and IPv6 colons both become `_`;
 * the family prefix says which to put back (the address is already normalised: IPv6 compressed,
 * hexadecimal only, IPv4-mapped folded to IPV4). The transport is upper-cased and left out when
 * unknown, as Asterisk does: `IPV4/198_51_100_23`, `IPV6/TCP/2001_db8__77`.
 */
export function statsdAddress(r: Remote): string {
  const v6 = r.address.includes(":");
  const addr = r.address.replace(/[^A-Za-z0-9]/g, "_");
  const family = v6 ? "IPV6/" : "IPV4/";
  return r.transport ? `${family}${r.transport.toUpperCase()}/${addr}` : family + addr;
}

/** Most distinct service names with their own `failed_auth.<Service>` path; later ones go to `other`. */
export const MAX_SERVICES = 200;

/**
 * An IPv4 dotted quad as its signed 32-bit value, the key of the IPv4 count table (a number
 * compares without reading characters); anything else, IPv6 included, comes back as it is.
 */
export function addressKey(address: string): number | string {
  const n = address.length;
  if (n < 7 || n > 15) return address;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = address.charCodeAt(i);
    if (c === 46) {
      if (digits === 0) return address;
      v = (v << 8) | part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (part > 255) return address;
      digits++;
    } else {
      return address;
    }
  }
  return dots === 3 && digits > 0 ? (v << 8) | part : address;
}

/** The dotted quad of an `addressKey` number. */
export function v4Text(key: number): string {
  return `${key >>> 24}.${(key >>> 16) & 255}.${(key >>> 8) & 255}.${key & 255}`;
}

export class StatsdMetrics {
  private readonly client: StatsD;
  private readonly services = new Map<string, ServiceCells>();
  private readonly serviceById: ServiceCells[] = [];
  /** IPv4 counts of this flush window, by address and (service, transport). */
  private readonly v4 = new IntCounts();
  /** IPv6 counts, by the address's id in `v6Ids` and (service, transport). */
  private readonly v6 = new IntCounts();
  /**
   * IPv6 address → id for this flush window. The parsers hand out one memoised string per
   * address, so the lookup mostly compares string identity and returns a small integer.
   */
  private v6Ids = new Map<string, number>();
  private v6Addrs: string[] = [];
  private readonly kinds = new Map<string, Cell>();
  /** Low-rate counters (bans, unbans): name → count since the last flush. */
  private misc = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private closing: Promise<void> | null = null;
  private sinceFlush = 0;
  /** Address cells created since the last flush; past MAX_CELLS the flush comes early, bounding memory. */
  private static readonly MAX_CELLS = 20_000;
  private readonly onError: (err: Error) => void;
  readonly stats = { flushes: 0, sent: 0, errors: 0 };

  constructor(opts: StatsdOptions) {
    const flushMs = opts.flushMs ?? 1000;
    this.onError = (err) => {
      this.stats.errors++;
      opts.onError?.(err);
    };
    this.client = new StatsDClient({
      host: opts.host,
      port: opts.port,
      prefix: opts.prefix,
      protocol: "udp",
      maxBufferSize: opts.maxBufferSize ?? 1432,
      bufferFlushInterval: flushMs,
      cacheDns: true,
      // Plain StatsD: no Datadog tags from the environment, no client telemetry.
      datadog: false,
      includeDataDogTags: false,
      includeDatadogTelemetry: false,
      telegraf: false,
      errorHandler: (err) => this.onError(err),
    });
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  /** One failed authentication: `failed_auth.<Service>.<ADDR>` and `failed_auth.<Service>.count`. */
  failedAuth(service: string, remote: Remote): void {
    let s = this.services.get(service);
    if (!s) {
      // Past the bound, new service names share `other` (kept under a key no service can have).
      const capped = this.services.size >= MAX_SERVICES;
      const key = capped ? "\0other" : service;
      s = this.services.get(key);
      if (!s) {
        const stem = `failed_auth.${capped ? "other" : statsdComponent(service)}.`;
        s = { id: this.serviceById.length + 1, stem, count: { name: `${stem}count`, n: 0 } };
        this.serviceById.push(s);
        this.services.set(key, s);
      }
    }
    s.count.n++;
    const { address, transport } = remote;
    const tag = (s.id << 3) | transportId(transport);
    const key = addressKey(address);
    if (typeof key === "number") {
      if (this.v4.inc(key, tag)) this.added();
      return;
    }
    let id = this.v6Ids.get(address);
    if (id === undefined) {
      id = this.v6Addrs.length;
      this.v6Addrs.push(address);
      this.v6Ids.set(address, id);
    }
    if (this.v6.inc(id, tag)) this.added();
  }

  /** A new address entry in this window; many of them bring the flush forward, bounding memory. */
  private added(): void {
    if (++this.sinceFlush >= StatsdMetrics.MAX_CELLS) void this.flush();
  }

  /** One event: `events.<kind>`. */
  event(kind: string): void {
    let c = this.kinds.get(kind);
    if (!c) {
      c = { name: `events.${statsdComponent(kind)}`, n: 0 };
      this.kinds.set(kind, c);
    }
    c.n++;
  }

  /** A low-rate counter such as `bans.<rule>`; `path` components must already be safe. */
  count(path: string, n = 1): void {
    this.misc.set(path, (this.misc.get(path) ?? 0) + n);
  }

  /** Hands every count gathered since the last flush to hot-shots and sends its buffer. */
  flush(): Promise<void> {
    if (this.closing) return this.closing;
    this.drain();
    return new Promise((resolve) =>
      this.client.flush((err) => {
        if (err) this.onError(err);
        resolve();
      }),
    );
  }

  private drain(): void {
    const send = (name: string, n: number) => {
      this.client.increment(name, n);
      this.stats.sent++;
    };
    this.stats.flushes++;
    for (const c of this.kinds.values()) {
      if (c.n > 0) send(c.name, c.n);
      c.n = 0;
    }
    // Totals and bans first: if a burst of datagrams overflows a receiver, the per-address tail suffers.
    for (const s of this.services.values()) {
      if (s.count.n > 0) send(s.count.name, s.count.n);
      s.count.n = 0;
    }
    for (const [name, n] of this.misc) send(name, n);
    this.misc = new Map();
    const line = (address: string, tag: number, n: number) => {
      const s = this.serviceById[(tag >>> 3) - 1]!;
      const transport = TRANSPORTS[tag & 7];
      send(s.stem + statsdAddress(transport ? { address, transport } : { address }), n);
    };
    this.v4.drain((key, tag, n) => line(v4Text(key), tag, n));
    const v6Addrs = this.v6Addrs;
    this.v6.drain((id, tag, n) => line(v6Addrs[id]!, tag, n));
    this.v6Ids = new Map();
    this.v6Addrs = [];
    this.sinceFlush = 0;
  }

  /** Sends what is pending and closes the socket. Idempotent; never rejects. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    clearInterval(this.timer);
    this.drain();
    this.closing = new Promise((resolve) => {
      try {
        this.client.close((err) => {
          if (err) this.onError(err);
          resolve();
        });
      } catch {
        resolve();
      }
    });
    return this.closing;
  }
}
