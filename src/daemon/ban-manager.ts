/**
 * Every ban and unban goes through here, whoever asked for it (a rule, the CLI, expiry):
 * the store first (so a crash cannot lose a ban we reported), then the kernel, then the
 * notifier, the engine and the live event listeners.
 */
import type { BanInfo } from "../api/types.js";
import { normalizeCidr } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Decision } from "../detect/types.js";
import type { Enforcer } from "../enforce/types.js";
import type { Notifier } from "../notify/notifier.js";
import type { BanRow, Store } from "../store/types.js";

/** Default length of a manual ban without `--for`. */
export const MANUAL_BAN_MS = 24 * 3_600_000;

export interface BanListener {
  banned?(row: BanRow, appliedMs: number, decision?: Decision): void;
  unbanned?(target: string, by: string): void;
  simulated?(d: Decision): void;
  enforceFailed?(target: string, err: unknown): void;
}

const iso = (t: number | null) => (t === null ? "never" : new Date(t).toISOString());

export function banInfo(b: BanRow): BanInfo {
  return {
    ip: b.target,
    rule: b.rule,
    reason: b.reason,
    source: b.source,
    since: new Date(b.since).toISOString(),
    expires: b.expiresAt === null ? null : new Date(b.expiresAt).toISOString(),
    count: b.count,
  };
}

export class BanManager {
  private readonly listeners: BanListener[] = [];

  constructor(
    private readonly store: Store,
    private enforcer: Enforcer,
    private notifier: Notifier,
    private readonly log: Logger,
    /** Called when a ban is lifted, so the detector may count the address afresh. */
    private forget: (target: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  listen(l: BanListener): void {
    this.listeners.push(l);
  }

  /** After a reload: new engine and notifier, same store and kernel. */
  rewire(notifier: Notifier, forget: (target: string) => void): void {
    this.notifier = notifier;
    this.forget = forget;
  }

  /**
   * Acts on a rule decision. Synchronous up to the store write; the kernel write completes in
   * the background (its failure is reported, and reconcile repairs it at the next start).
   * `received` is when the triggering record was read, for the time-to-ban figure.
   */
  decide(d: Decision, received: number): void {
    if (d.suppressed) return;
    if (d.simulate) {
      this.log.warn({ ip: d.target, rule: d.rule, count: d.count }, "simulate: rule matched, not banning");
      for (const l of this.listeners) l.simulated?.(d);
      return;
    }
    const since = this.now();
    // Detection runs on log time; the ban runs from now. A decision from an old log line whose
    // ban would already be over (a backlog read with --from-start) is not applied.
    if (d.last + d.duration < since - 60_000 && d.duration > 0) {
      this.log.debug({ ip: d.target, rule: d.rule }, "decision from old log lines: its ban would already be over");
      return;
    }
    const { ban } = this.store.addBan({
      target: d.target,
      rule: d.rule,
      reason: d.description,
      source: "rule",
      since,
      expiresAt: d.duration > 0 ? since + d.duration : null,
      count: d.count,
      detail: d.event.pattern,
    });
    this.notifier.banned({
      target: ban.target,
      rule: d.rule,
      reason: d.description,
      count: d.count,
      duration: d.duration > 0 ? d.duration : null,
      first: d.first,
      last: d.last,
    });
    this.apply(ban, received, d);
  }

  /** Manual ban from the CLI/API. Resolves once the ban is in the kernel. */
  async manual(
    target: string,
    durationMs: number | undefined,
    reason: string | undefined,
    by: string,
  ): Promise<BanRow> {
    const n = normalizeCidr(target);
    if (!n) throw new SipwardenError("ADDRESS_INVALID", `not an IP address or CIDR: ${JSON.stringify(target)}`);
    const since = this.now();
    const ms = durationMs ?? MANUAL_BAN_MS;
    const expiresAt = ms > 0 ? since + ms : null;
    // The kernel first: a refused address (loopback, our own, allowlisted) must not be stored.
    await this.enforcer.add({ target: n.text, expiresAt });
    const { ban } = this.store.addBan({
      target: n.text,
      rule: "manual",
      reason: reason ?? `manual ban by ${by}`,
      source: "manual",
      since,
      expiresAt,
    });
    this.log.info({ ip: ban.target, expires: iso(ban.expiresAt), by }, "manual ban");
    this.notifier.banned({
      target: ban.target,
      rule: "manual",
      reason: ban.reason,
      count: 0,
      duration: expiresAt === null ? null : ms,
      first: since,
      last: since,
    });
    for (const l of this.listeners) l.banned?.(ban, 0);
    return ban;
  }

  /** Lifts one ban, or all. Returns how many were lifted. */
  async unban(target: string, by: string): Promise<number> {
    if (target === "all") {
      const rows = this.store.activeBans(this.now());
      this.store.clearBans({ by });
      await Promise.all(rows.map((r) => this.lift(r.target, by)));
      return rows.length;
    }
    const n = normalizeCidr(target);
    if (!n) throw new SipwardenError("ADDRESS_INVALID", `not an IP address or CIDR: ${JSON.stringify(target)}`);
    if (!this.store.removeBan(n.text, { by })) return 0;
    await this.lift(n.text, by);
    return 1;
  }

  /** Moves expired bans out of the store (the kernel drops them by its own timeout). */
  expire(): number {
    const rows = this.store.expireBans(this.now());
    for (const r of rows) {
      this.forget(r.target);
      this.notifier.unbanned({ target: r.target, by: "expiry" });
      for (const l of this.listeners) l.unbanned?.(r.target, "expiry");
    }
    if (rows.length) this.log.info({ count: rows.length }, "bans expired");
    return rows.length;
  }

  private async lift(target: string, by: string): Promise<void> {
    this.forget(target);
    this.notifier.unbanned({ target, by });
    for (const l of this.listeners) l.unbanned?.(target, by);
    try {
      await this.enforcer.remove(target);
      this.log.info({ ip: target, by }, "unbanned");
    } catch (err) {
      this.log.error({ ip: target, err }, "unban failed in the firewall");
    }
  }

  private apply(ban: BanRow, received: number, d: Decision): void {
    this.enforcer.add({ target: ban.target, expiresAt: ban.expiresAt }).then(
      () => {
        const appliedMs = this.now() - received;
        this.log.info(
          { ip: ban.target, rule: d.rule, count: d.count, expires: iso(ban.expiresAt), ms: appliedMs },
          `banned ${ban.target}: ${d.description}`,
        );
        for (const l of this.listeners) l.banned?.(ban, appliedMs, d);
      },
      (err: unknown) => {
        if (err instanceof SipwardenError && err.code === "ADDRESS_REFUSED") {
          // Defence in depth: the policy should have suppressed it. Never keep such a ban.
          this.store.removeBan(ban.target, { by: "refused", reason: err.message });
          this.log.warn({ ip: ban.target, rule: d.rule }, err.message);
        } else {
          this.log.error({ ip: ban.target, err }, "ban could not be applied to the firewall");
        }
        for (const l of this.listeners) l.enforceFailed?.(ban.target, err);
      },
    );
  }
}
