/**
 * One attack reported twice must count once. Examples: PJSIP reports an unknown user with
 * credentials as InvalidAccountID and ChallengeResponseFailed (same Call-ID); reading both the
 * security log and the full log reports each attempt twice under different patterns; acl.c
 * echoes every ACL refusal that pjsip, chan_sip or the manager also log; AMI logs "tried to
 * authenticate with nonexistent user" and then "failed to authenticate as" for one login;
 * Kamailio logs a pike block and the script's ALERT line, sometimes from several workers.
 *
 * An attempt is the set of reports from one address that arrive within `window` ms of its first
 * report, each with a different signature (kind + pattern). A signature seen again starts a new
 * attempt: that is a retry (a brute-forcer reusing its Call-ID, FreeSWITCH logging the next
 * failure), not an echo. Reports that carry a session id (Call-ID, AMI session) belong to that
 * session's attempt, so parallel sessions do not merge; a report without one joins the address's
 * newest attempt, and a session's first report joins a newest attempt that no session has
 * claimed yet. Flood reports are special: any flood report within the window is the same block.
 *
 * Each address keeps its last SLOTS attempts (session ids as seeded hashes, so no attacker
 * string is retained); each counting rule counts an attempt at most once, through whichever
 * report it matches first.
 */
import type { AttackEvent } from "../core/events.js";
import { ClockTable } from "./clock-table.js";
import { hash53 } from "./hash.js";

/** Concurrent attempts remembered per address (plus one for floods). */
const SLOTS = 4;
const PER = SLOTS + 1;
const FLOOD = SLOTS;
const MAX_SIGS = 4;

const KIND_INDEX: Record<string, number> = {
  auth_failed: 0,
  unknown_account: 1,
  acl_denied: 2,
  bad_request: 3,
  no_extension: 4,
  scanner: 5,
  flood: 6,
  limit: 7,
};

export class Dedup extends ClockTable {
  /** Per attempt (address slot × PER + j): */
  private first: Float64Array;
  private session: Float64Array;
  private sigs: Int32Array;
  private nsig: Uint8Array;
  private counted: Uint32Array;
  /** Per address: index of the newest attempt. */
  private newest: Uint8Array;
  private readonly words: number;
  private readonly patternIds = new Map<string, number>();
  duplicates = 0;

  constructor(
    private readonly window: number,
    maxKeys: number,
    ruleCount: number,
    private readonly seed: number,
  ) {
    super(maxKeys);
    this.words = Math.max(1, Math.ceil(ruleCount / 32));
    const cap = this.expires.length;
    this.first = new Float64Array(cap * PER);
    this.session = new Float64Array(cap * PER);
    this.sigs = new Int32Array(cap * PER * MAX_SIGS);
    this.nsig = new Uint8Array(cap * PER);
    this.counted = new Uint32Array(cap * PER * this.words);
    this.newest = new Uint8Array(cap);
  }

  protected grow(cap: number): void {
    const grow = <T extends Float64Array | Int32Array | Uint8Array | Uint32Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.first = grow(this.first, cap * PER);
    this.session = grow(this.session, cap * PER);
    this.sigs = grow(this.sigs, cap * PER * MAX_SIGS);
    this.nsig = grow(this.nsig, cap * PER);
    this.counted = grow(this.counted, cap * PER * this.words);
    this.newest = grow(this.newest, cap);
  }

  protected clear(slot: number): void {
    this.nsig.fill(0, slot * PER, (slot + 1) * PER);
    this.first.fill(Number.NEGATIVE_INFINITY, slot * PER, (slot + 1) * PER);
    this.newest[slot] = 0;
  }

  private signature(e: AttackEvent): number {
    let p = this.patternIds.get(e.pattern);
    if (p === undefined) {
      // Pattern ids are a closed set from the parsers; the bound only guards against misuse.
      if (this.patternIds.size >= 65536) this.patternIds.clear();
      p = this.patternIds.size;
      this.patternIds.set(e.pattern, p);
    }
    return p * 8 + (KIND_INDEX[e.kind] ?? 7);
  }

  /** Starts a new attempt in `a` (an attempt index). */
  private start(a: number, session: number, sig: number, t: number): void {
    this.first[a] = t;
    this.session[a] = session;
    this.sigs[a * MAX_SIGS] = sig;
    this.nsig[a] = 1;
    this.counted.fill(0, a * this.words, (a + 1) * this.words);
  }

  private live(a: number, t: number): boolean {
    return this.nsig[a]! > 0 && Math.abs(t - this.first[a]!) <= this.window;
  }

  /** Adds `sig` to attempt `a`; false when `a` already has it (so this is a new attempt). */
  private join(a: number, sig: number): boolean {
    const base = a * MAX_SIGS;
    const n = this.nsig[a]!;
    for (let i = 0; i < n; i++) if (this.sigs[base + i] === sig) return false;
    if (n < MAX_SIGS) {
      this.sigs[base + n] = sig;
      this.nsig[a] = n + 1;
    }
    return true;
  }

  /** The attempt `e` belongs to, or -1 when de-duplication is off. `h`: keyHash of the address. */
  attempt(e: AttackEvent, h?: number): number {
    if (this.window <= 0) return -1;
    const t = e.time;
    const s = this.slotFor(e.remote.address, t, h);
    const base = s * PER;
    const sig = this.signature(e);
    // Keep the address while any attempt may still get an echo.
    if (this.fresh || t + this.window > this.expires[s]!) this.expires[s] = t + this.window;
    if (e.kind === "flood") {
      const a = base + FLOOD;
      if (!this.live(a, t)) this.start(a, 0, sig, t);
      return a;
    }
    const sid = e.sessionId ? hash53(e.sessionId, this.seed) : 0;
    const n = base + this.newest[s]!;
    if (sid !== 0) {
      for (let j = 0; j < SLOTS; j++) {
        const a = base + j;
        if (this.session[a] === sid && this.live(a, t)) {
          if (this.join(a, sig)) return a;
          this.start(a, sid, sig, t);
          this.newest[s] = j;
          return a;
        }
      }
      // A first report from this session may echo an attempt a session-less report began.
      if (this.session[n] === 0 && this.live(n, t) && this.join(n, sig)) {
        this.session[n] = sid;
        return n;
      }
    } else if (this.live(n, t) && this.join(n, sig)) {
      return n;
    }
    // A new attempt replaces the oldest one.
    let j = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (let k = 0; k < SLOTS; k++) {
      const f = this.nsig[base + k] === 0 ? Number.NEGATIVE_INFINITY : this.first[base + k]!;
      if (f < oldest) {
        oldest = f;
        j = k;
      }
    }
    this.start(base + j, sid, sig, t);
    this.newest[s] = j;
    return base + j;
  }

  /** True when rule `rule` has not yet counted attempt `a`; marks it counted. */
  claim(a: number, rule: number): boolean {
    if (a < 0) return true;
    const i = a * this.words + (rule >>> 5);
    const bit = 1 << (rule & 31);
    const w = this.counted[i]!;
    if (w & bit) {
      this.duplicates++;
      return false;
    }
    this.counted[i] = w | bit;
    return true;
  }
}
