/**
 * Offence history for escalation. The SQLite store implements the same interface (it is the
 * source of truth in the daemon); the in-memory one serves replay, tests and `sipwarden test`.
 */

/** Past bans per target. `now` is the event time, so that a replay escalates like the live run. */
export interface BanHistory {
  /** Offences of `target` that still count at `now` (the store forgets old ones). */
  offences(target: string, now?: number): number;
  /** Records one offence (a ban) of `target` at epoch ms `at`. */
  record(target: string, at: number): void;
}

const DAY = 86_400_000;

/** In-memory BanHistory: offences older than `decay` ms no longer count. */
export class MemoryBanHistory implements BanHistory {
  private readonly byTarget = new Map<string, number[]>();

  constructor(
    private readonly decay = 30 * DAY,
    /** Bound on remembered targets; the oldest-recorded are forgotten first. */
    private readonly maxTargets = 100_000,
  ) {}

  offences(target: string, now?: number): number {
    const at = this.byTarget.get(target);
    if (!at) return 0;
    if (now === undefined) return at.length;
    let n = 0;
    for (const t of at) if (t > now - this.decay && t <= now) n++;
    return n;
  }

  record(target: string, at: number): void {
    let list = this.byTarget.get(target);
    if (list) this.byTarget.delete(target);
    else list = [];
    list.push(at);
    // Keep only what can still count; bans are rare, so this stays tiny.
    while (list.length > 64 || (list.length > 0 && list[0]! <= at - this.decay)) list.shift();
    this.byTarget.set(target, list);
    if (this.byTarget.size > this.maxTargets) {
      const oldest = this.byTarget.keys().next().value;
      if (oldest !== undefined) this.byTarget.delete(oldest);
    }
  }
}
