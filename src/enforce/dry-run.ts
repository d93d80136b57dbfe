/**
 * A real backend that changes nothing: it logs the nft commands it would run and keeps the
 * state those commands would create, with the same expiry, so that `list` and `reconcile`
 * answer as the kernel would. Chosen when sipwarden is not root or nft is missing, and it
 * says so loudly, because a dry run that looks like protection is worse than none.
 */
import { type BackendOptions, BaseEnforcer, type Desired } from "./base.js";
import type { Op } from "./batcher.js";
import type { Expiry } from "./cidr-partition.js";
import type { ConntrackFlusher } from "./conntrack.js";
import { elementCommand, elementText, remainingFor, rulesetCommands, setFor } from "./nft-script.js";
import type { BanEntry, ReconcileResult } from "./types.js";

export interface DryRunOptions extends BackendOptions {
  /** Why the dry run was chosen, for the start-up warning. */
  reason?: string;
}

export class DryRunEnforcer extends BaseEnforcer {
  readonly backend = "dry-run" as const;
  private readonly bans = new Map<string, Expiry>();
  private readonly reason: string;

  constructor(opts: DryRunOptions) {
    super(opts);
    this.reason = opts.reason ?? "dry-run backend selected";
  }

  protected override makeConntrack(): ConntrackFlusher | null {
    return null;
  }

  protected async setup(): Promise<void> {
    this.safe(() =>
      this.hooks.onWarn?.(
        `DRY RUN (${this.reason}): NOTHING IS BLOCKED. Bans are only logged; run as root with nft installed to enforce them.`,
      ),
    );
    this.say(rulesetCommands(this.settings).join("; "));
  }

  protected async applyOps(ops: Op[]): Promise<void> {
    const now = this.now();
    for (const op of ops) {
      const set = setFor(op.target);
      const t = op.target.text;
      if (op.kind === "add" && (op.expiresAt === null || op.expiresAt > now)) {
        this.say(elementCommand("add", this.settings.table, set, [elementText(t, remainingFor(op.expiresAt, now))]));
        if (this.settings.conntrackFlush) this.say(`conntrack -D --orig-src ${t}; conntrack -D --orig-dst ${t}`);
        this.bans.set(t, op.expiresAt);
      } else {
        this.say(elementCommand("delete", this.settings.table, set, [t]));
        this.bans.delete(t);
      }
    }
    this.counters.batches++;
  }

  protected async doReconcile(check: () => Map<string, Desired>): Promise<ReconcileResult> {
    const desired = check();
    const now = this.now();
    this.prune(now);
    const result: ReconcileResult = { added: 0, removed: 0, kept: 0 };
    for (const [t, exp] of this.bans) {
      const d = desired.get(t);
      if (!d) {
        this.bans.delete(t);
        result.removed++;
      } else if (this.sameExpiry(exp, d.expiresAt, now)) result.kept++;
      else {
        this.bans.set(t, d.expiresAt);
        result.added++;
      }
    }
    for (const [t, d] of desired)
      if (!this.bans.has(t)) {
        this.bans.set(t, d.expiresAt);
        result.added++;
      }
    this.say(`reconcile: ${result.added} added, ${result.removed} removed, ${result.kept} kept`);
    return result;
  }

  protected async doList(): Promise<BanEntry[]> {
    this.prune(this.now());
    return [...this.bans].map(([target, expiresAt]) => ({ target, expiresAt }));
  }

  protected async doDestroy(): Promise<void> {
    this.say(`delete table inet ${this.settings.table}`);
    this.bans.clear();
  }

  protected async shutdown(): Promise<void> {}

  /** The kernel would have expired these by now. */
  private prune(now: number): void {
    for (const [t, exp] of this.bans) if (exp !== null && exp <= now) this.bans.delete(t);
  }

  private say(command: string): void {
    this.safe(() => this.hooks.onInfo?.(`dry-run: would run: ${command}`));
  }
}
