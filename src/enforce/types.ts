/**
 * The enforcement contract: what the daemon and the `firewall` CLI call to put bans into the
 * kernel. One file, no I/O, so every backend and every caller shares the same words.
 *
 * Ownership, in short:
 * - The store owns the truth about bans. The enforcer owns only its kernel objects (one nft
 *   table, or its ipsets and one iptables chain) and never touches anything else.
 * - The enforcer retries failed firewall commands itself, with back-off, and reports every
 *   failure through `EnforcerHooks.onError`; it never throws asynchronously and never exits.
 * - The caller closes it. `close()` drains pending work but leaves the bans in the kernel, so
 *   they survive a daemon restart; `destroy()` is the clean removal.
 */
import type { SipwardenError } from "../core/errors.js";

export type BackendName = "nftables" | "ipset" | "dry-run";

/** One ban as the enforcer sees it. */
export interface BanEntry {
  /** A normalised IP or CIDR, exactly as `normalizeCidr(..).text` renders it. */
  target: string;
  /** Epoch ms when the ban ends; null means permanent. */
  expiresAt: number | null;
}

/** What `reconcile` changed, counted in kernel elements. */
export interface ReconcileResult {
  /** Elements written: missing ones, plus present ones whose remaining time was wrong. */
  added: number;
  /** Elements in the kernel that the store does not hold. */
  removed: number;
  /** Elements already right (remaining time within tolerance): left alone. */
  kept: number;
}

/** Counters for metrics; monotonic for the life of one enforcer. */
export interface EnforcerStats {
  /** Firewall transactions or processes run (nft, ipset, iptables), excluding conntrack. */
  commands: number;
  /** Of those, the ones that failed. */
  failures: number;
  /** Operations scheduled again after a failure. */
  retries: number;
  /** Operations given up on after the last retry. */
  dropped: number;
  /** Batches applied (one transaction each). */
  batches: number;
  /** Ban and unban operations that reached the kernel. */
  added: number;
  removed: number;
  /** Conntrack flush runs, those that failed, and the entries they deleted. */
  conntrackFlushes: number;
  conntrackFailures: number;
  conntrackDeleted: number;
}

/** Callbacks the daemon wires to its logger and metrics. All optional; none may throw. */
export interface EnforcerHooks {
  /** A firewall or conntrack command failed. The message carries the command's stderr. */
  onError?(err: SipwardenError): void;
  /** Something the operator must see (dry-run mode, a missing tool, a refused stray). */
  onWarn?(message: string): void;
  /** Routine information: the dry-run backend reports what it would have done here. */
  onInfo?(message: string): void;
  /** Every firewall command that ran, with its duration. */
  onCommand?(info: CommandInfo): void;
}

export interface CommandInfo {
  program: string;
  /** What it did, e.g. `batch 3 add, 1 remove` or `list`. */
  what: string;
  ms: number;
  ok: boolean;
}

/**
 * A firewall backend. Every method may be called before the previous one resolved; the
 * enforcer serialises its own kernel writes. Targets given to `add` and `remove` are checked
 * first: an invalid address throws `ADDRESS_INVALID`, a protected one `ADDRESS_REFUSED`,
 * synchronously inside the returned promise and before anything reaches a command.
 */
export interface Enforcer {
  readonly backend: BackendName;
  /** Creates or verifies the own table/sets/rules. Idempotent; existing bans are kept. */
  start(): Promise<void>;
  /**
   * Queues a ban. Resolves once the batch holding it is in the kernel; rejects with
   * `ENFORCER_FAILED` only after every retry failed. A later `add` of the same target
   * replaces the pending one (and its expiry) rather than queueing twice.
   */
  add(ban: BanEntry): Promise<void>;
  /** Queues an unban; removing a target that is not banned is not an error. */
  remove(target: string): Promise<void>;
  /** Applies whatever is queued now instead of waiting for the batch window. */
  commit(): Promise<void>;
  /**
   * Makes the kernel hold exactly `active` (the store's unexpired bans): adds the missing ones
   * with their remaining time, removes the strays, keeps the rest. Refused or invalid entries
   * are reported through `onWarn` and skipped. Never duplicates an element or a rule.
   */
  reconcile(active: readonly BanEntry[]): Promise<ReconcileResult>;
  /** What the kernel holds now (expiry at the kernel's resolution, one second for nft JSON). */
  list(): Promise<BanEntry[]>;
  /** A snapshot of the counters. */
  stats(): EnforcerStats;
  /** Drains queued work (including conntrack flushes) and stops helpers. Keeps the bans. */
  close(): Promise<void>;
  /** Removes every kernel object this backend owns. */
  destroy?(): Promise<void>;
}

/** Settings shared by the backends; the `enforce` section of the config maps onto these. */
export interface EnforceSettings {
  /** `drop` silently, or `reject` (ICMP unreachable, TCP reset). */
  action: "drop" | "reject";
  /** Only these destination ports (every port when empty). */
  ports: readonly number[];
  /** Only these protocols; with no ports and both protocols, every packet is blocked. */
  protocols: readonly ("udp" | "tcp")[];
  /** At most one transaction per this many ms while bans keep arriving; 0 = no pause. */
  batchWindow: number;
  /** Delete the banned address's conntrack entries after each ban. */
  conntrackFlush: boolean;
  /** Name of the nft table, and the stem of ipset and iptables chain names. */
  table: string;
}

export function emptyStats(): EnforcerStats {
  return {
    commands: 0,
    failures: 0,
    retries: 0,
    dropped: 0,
    batches: 0,
    added: 0,
    removed: 0,
    conntrackFlushes: 0,
    conntrackFailures: 0,
    conntrackDeleted: 0,
  };
}
