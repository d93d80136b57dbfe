/** At most `max` events in any sliding window of `windowMs` (mails per hour). */
export class WindowLimit {
  private readonly times: number[] = [];

  constructor(
    readonly max: number,
    readonly windowMs = 3_600_000,
  ) {}

  private prune(now: number): void {
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) this.times.shift();
  }

  allows(now: number): boolean {
    this.prune(now);
    return this.times.length < this.max;
  }

  note(now: number): void {
    this.times.push(now);
  }

  /** The first instant at which `allows` will be true again. */
  nextAt(now: number): number {
    this.prune(now);
    if (this.times.length < this.max) return now;
    return this.times[this.times.length - this.max]! + this.windowMs;
  }
}
