/**
 * The default backend: one nft table, `inet <table>`, with four timeout sets (single IPv4 and
 * IPv6 addresses, and interval sets for networks) matched in a chain at prerouting, priority
 * raw. The kernel expires elements by itself, so a ban ends on time even with the daemon down.
 */
import { type BackendOptions, BaseEnforcer, type Desired } from "./base.js";
import type { Op } from "./batcher.js";
import { type Expiry, type NetBan, NetModel, netFromText, netToText, partition } from "./cidr-partition.js";
import { NftClient } from "./nft-process.js";
import {
  checkTableName,
  elementCommand,
  elementText,
  type KernelElement,
  type Listing,
  parseListing,
  remainingFor,
  rulesetCommands,
  SET_NAMES,
  type SetName,
  setFor,
} from "./nft-script.js";
import type { BanEntry, ReconcileResult } from "./types.js";

export interface NftablesOptions extends BackendOptions {
  /** False forces one `nft -f -` process per batch (the fallback path). */
  interactive?: boolean;
}

/** An element is taken as possibly still in the kernel for this long after its expiry. */
const EXPIRY_SLACK_MS = 5000;

/** Commands for one transaction, grouped so that each set gets at most three commands. */
class Script {
  private readonly pre = new Map<SetName, string[]>();
  private readonly del = new Map<SetName, string[]>();
  private readonly add = new Map<SetName, string[]>();
  count = 0;

  private push(m: Map<SetName, string[]>, set: SetName, elem: string): void {
    let l = m.get(set);
    if (!l) {
      l = [];
      m.set(set, l);
    }
    l.push(elem);
    this.count++;
  }

  /**
   * Deletes `text`. nft fails the whole transaction when it deletes an element that is not
   * there (it may have just expired), so the element is first added, without a timeout, in
   * the same transaction: the pair always succeeds and leaves it absent.
   */
  remove(set: SetName, text: string): void {
    this.push(this.pre, set, text);
    this.push(this.del, set, text);
  }

  /**
   * Deletes `text` from an interval set. The add-then-delete pair cannot be used there: an
   * element added again and deleted in one transaction still counts as present when the same
   * transaction adds an overlapping interval. So this deletes only what the model holds, and a
   * failure makes the next batch re-read the kernel first.
   */
  removeExact(set: SetName, text: string): void {
    this.push(this.del, set, text);
  }

  insert(set: SetName, text: string, remaining: number | null): void {
    // A burst's bans mostly share their remaining time to the millisecond: format it once.
    if (remaining !== this.lastRemaining) {
      this.lastRemaining = remaining;
      this.lastSuffix = remaining === null ? "" : elementText("", remaining);
    }
    this.push(this.add, set, text + this.lastSuffix);
  }

  private lastRemaining: number | null | undefined = undefined;
  private lastSuffix = "";

  commands(table: string): string[] {
    const out: string[] = [];
    for (const [m, verb] of [
      [this.pre, "add"],
      [this.del, "delete"],
      [this.add, "add"],
    ] as const)
      for (const s of SET_NAMES) {
        const l = m.get(s);
        if (l?.length) out.push(elementCommand(verb, table, s, l));
      }
    return out;
  }
}

export class NftablesEnforcer extends BaseEnforcer {
  readonly backend = "nftables" as const;
  private readonly client: NftClient;
  private readonly table: string;
  /** Single addresses the kernel holds, by text; null until a listing made it known. */
  private singles: Map<string, Expiry> | null = null;
  private readonly nets = new NetModel();
  /** A network change failed: the pieces the kernel holds must be read again before the next. */
  private netsDirty = false;

  constructor(opts: NftablesOptions) {
    super(opts);
    this.table = checkTableName(opts.settings.table);
    this.client = new NftClient({
      netns: opts.netns,
      interactive: opts.interactive,
      onWarn: (m) => this.safe(() => this.hooks.onWarn?.(m)),
    });
  }

  /** The `nft -i` helper's pid (tests kill it to prove the fallback). */
  get helperPid(): number | undefined {
    return this.client.interactivePid;
  }

  protected async setup(): Promise<void> {
    // The network sets must be known before a network ban can be placed without overlap. Their
    // listing is cheap, while anything that lists the whole table (even `list tables`) makes
    // nft fetch every element: about a second at 100,000 bans.
    const listing = await this.read(["net4", "net6"]);
    await this.run(rulesetCommands(this.settings), "setup");
    this.nets.load(listing.elements.filter((e) => !e.text.includes("-")).map((e) => toNetBan(e)));
    // A table made just now is empty: single addresses need no delete-before-add until it fills.
    if (!listing.exists) this.singles = new Map();
  }

  protected async applyOps(ops: Op[]): Promise<void> {
    const now = this.now();
    const script = new Script();
    // The batcher queues one operation per target, so targets in `ops` are distinct.
    const singlesAfter: Array<[string, Expiry | undefined]> = [];
    if (this.netsDirty) await this.resyncNets();
    // Net effect on the interval sets: one batch may touch the same piece more than once.
    const netRemove = new Map<string, NetBan>();
    const netAdd = new Map<string, NetBan>();
    for (const op of ops) {
      const set = setFor(op.target);
      const expiresAt = op.kind === "add" ? op.expiresAt : undefined;
      const live = expiresAt !== undefined && (expiresAt === null || expiresAt > now);
      if (op.target.net) {
        const n = netFromText(op.target.text);
        const diff = live ? this.nets.add({ ...n, expiresAt: expiresAt! }) : this.nets.remove(n);
        for (const p of diff.remove) {
          const k = netToText(p);
          if (netAdd.has(k)) netAdd.delete(k);
          else netRemove.set(k, p);
        }
        for (const p of diff.add) netAdd.set(netToText(p), p);
        continue;
      }
      const text = op.target.text;
      const known = this.singles;
      const cur = known?.get(text);
      const mayBePresent = known === null || (cur !== undefined && (cur === null || cur > now - EXPIRY_SLACK_MS));
      if (live) {
        if (known !== null && cur === expiresAt) continue; // already exactly so
        if (mayBePresent) script.remove(set, text);
        script.insert(set, text, remainingFor(expiresAt!, now));
        singlesAfter.push([text, expiresAt]);
      } else {
        if (mayBePresent) script.remove(set, text);
        singlesAfter.push([text, undefined]);
      }
    }
    // An expired piece is gone from the kernel already; deleting it would fail the batch.
    for (const [k, p] of netRemove)
      if (p.expiresAt === null || p.expiresAt > now) script.removeExact(p.family === 4 ? "net4" : "net6", k);
    for (const [k, p] of netAdd) {
      const left = remainingFor(p.expiresAt, now);
      if (left === null || left > 0) script.insert(p.family === 4 ? "net4" : "net6", k, left);
    }
    try {
      await this.run(script.commands(this.table), `batch of ${ops.length}`);
    } catch (e) {
      this.nets.rollback();
      if (netRemove.size > 0 || netAdd.size > 0) this.netsDirty = true;
      throw e;
    }
    this.nets.commit();
    if (this.singles)
      for (const [k, v] of singlesAfter) {
        if (v === undefined) this.singles.delete(k);
        else this.singles.set(k, v);
      }
  }

  private async resyncNets(): Promise<void> {
    const listing = await this.read(["net4", "net6"]);
    this.nets.resyncPieces(listing.elements.filter((e) => !e.text.includes("-")).map((e) => toNetBan(e)));
    this.netsDirty = false;
  }

  protected async doReconcile(check: () => Map<string, Desired>): Promise<ReconcileResult> {
    const reading = this.read(SET_NAMES);
    // Checked while nft lists (the slow part of a restart), in parallel on another core.
    let desired: Map<string, Desired>;
    try {
      desired = check();
    } catch (e) {
      await reading.catch(() => {});
      throw e;
    }
    const wantSingles = new Map<string, Expiry>();
    const wantNets: NetBan[] = [];
    for (const d of desired.values()) {
      if (d.target.net) wantNets.push({ ...netFromText(d.target.text), expiresAt: d.expiresAt });
      else wantSingles.set(d.target.text, d.expiresAt);
    }
    const pieces = partition(wantNets);
    let listing = await reading;
    // An interval element that expires between the listing and the transaction makes its
    // delete fail, and with it the transaction: then list again (the window is small).
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.applyReconcile(listing, wantSingles, pieces);
        this.singles = wantSingles;
        this.nets.replace(wantNets, pieces);
        return result;
      } catch (e) {
        if (attempt >= 3) throw e;
        this.report(e);
        listing = await this.read(SET_NAMES);
      }
    }
  }

  private async applyReconcile(
    listing: Listing,
    wantSingles: Map<string, Expiry>,
    pieces: readonly NetBan[],
  ): Promise<ReconcileResult> {
    const now = this.now();
    // Keyed by set and text: a network split down to single addresses puts bare addresses
    // into an interval set, which may equal a single-address ban.
    const want = new Map<string, { set: SetName; text: string; expiresAt: Expiry }>();
    for (const [text, expiresAt] of wantSingles) {
      const set: SetName = text.includes(":") ? "addr6" : "addr4";
      want.set(`${set} ${text}`, { set, text, expiresAt });
    }
    for (const p of pieces) {
      const set: SetName = p.family === 4 ? "net4" : "net6";
      const text = netToText(p);
      want.set(`${set} ${text}`, { set, text, expiresAt: p.expiresAt });
    }

    const script = new Script();
    const result: ReconcileResult = { added: 0, removed: 0, kept: 0 };
    const seen = new Set<string>();
    for (const k of listing.elements) {
      const key = `${k.set} ${k.text}`;
      const w = want.get(key);
      if (w && !seen.has(key)) {
        seen.add(key);
        const eff: Expiry = remainingFor(w.expiresAt, now) === null ? null : w.expiresAt;
        if (this.sameExpiry(k.expiresAt, eff, now)) {
          result.kept++;
          continue;
        }
        this.removeListed(script, k);
        script.insert(k.set, k.text, remainingFor(w.expiresAt, now));
        result.added++;
        continue;
      }
      this.removeListed(script, k);
      result.removed++;
    }
    for (const [key, w] of want) {
      if (seen.has(key)) continue;
      const left = remainingFor(w.expiresAt, now);
      if (left !== null && left <= 0) continue;
      script.insert(w.set, w.text, left);
      result.added++;
    }
    await this.run(script.commands(this.table), "reconcile");
    return result;
  }

  /** Deletes an element just listed (an interval one exactly: see `Script.removeExact`). */
  private removeListed(script: Script, k: KernelElement): void {
    if (k.set === "addr4" || k.set === "addr6") script.remove(k.set, k.text);
    else script.removeExact(k.set, k.text);
  }

  protected async doList(): Promise<BanEntry[]> {
    const listing = await this.read(SET_NAMES);
    return listing.elements.map((e) => ({ target: e.text, expiresAt: e.expiresAt }));
  }

  protected async doDestroy(): Promise<void> {
    try {
      await this.run([`delete table inet ${this.table}`], "destroy");
    } catch (e) {
      // Already gone is what we wanted.
      if (!/No such file or directory/.test((e as Error).message)) throw e;
    }
    this.singles = new Map();
    this.nets.replace([], []);
  }

  protected async shutdown(): Promise<void> {
    await this.client.close();
  }

  /** Runs one transaction, counting it and reporting its duration. */
  private async run(commands: string[], what: string): Promise<void> {
    if (commands.length === 0) return;
    const started = performance.now();
    try {
      await this.client.apply(commands);
      this.counters.batches++;
      this.noteCommand("nft", what, performance.now() - started, true);
    } catch (e) {
      this.noteCommand("nft", what, performance.now() - started, false);
      throw e;
    }
  }

  /** Lists the table; a missing table reads as empty. `sets` limits what is listed. */
  private async read(sets: readonly SetName[]): Promise<Listing> {
    const now = this.now();
    const started = performance.now();
    try {
      let json: unknown;
      if (sets.length === SET_NAMES.length || sets.length === 0)
        json = await this.client.json(["list", "table", "inet", this.table]);
      else {
        const items: unknown[] = [];
        for (const s of sets) {
          const part = (await this.client.json(["list", "set", "inet", this.table, s])) as { nftables?: unknown[] };
          items.push(...(part.nftables ?? []));
        }
        json = { nftables: items };
      }
      this.noteCommand("nft", "list", performance.now() - started, true);
      return parseListing(json, this.table, now);
    } catch (e) {
      if (/No such file or directory/.test((e as Error).message))
        return { exists: false, sets: new Set(), elements: [], rules: 0 };
      this.noteCommand("nft", "list", performance.now() - started, false);
      throw e;
    }
  }

  /** For tests: the table's rule count, to prove that restarts never duplicate rules. */
  async ruleCount(): Promise<number> {
    return (await this.read(SET_NAMES)).rules;
  }
}

function toNetBan(e: KernelElement): NetBan {
  return { ...netFromText(e.text), expiresAt: e.expiresAt };
}
