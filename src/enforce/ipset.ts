/**
 * The backend for hosts that run iptables: four ipsets with timeouts (hash:ip and hash:net,
 * per family), matched by an own chain that one rule in the raw table's PREROUTING jumps to
 * (filter INPUT for `reject`, which raw does not allow). Batches go through `ipset restore
 * -exist`, which re-times an existing entry and ignores deleting a missing one, so every
 * batch is idempotent and safe to apply again after a partial failure.
 */
import { SipwardenError } from "../core/errors.js";
import { type BackendOptions, BaseEnforcer, type Desired } from "./base.js";
import type { Op } from "./batcher.js";
import type { Expiry } from "./cidr-partition.js";
import {
  addLine,
  chainRestore,
  createLines,
  delLine,
  hookFor,
  IPSET_KINDS,
  IPSET_MAX_TIMEOUT_S,
  type IpsetElement,
  type IpsetNames,
  ipsetNames,
  kindFor,
  parseIpsetSave,
} from "./ipset-script.js";
import { clipStderr, netnsPrefix, runCommand } from "./run.js";
import type { BanEntry, ReconcileResult } from "./types.js";

export interface IpsetOptions extends BackendOptions {
  /** iptables program for IPv4 (`iptables`, `iptables-legacy`, `iptables-nft`). */
  iptables?: string;
  /** The IPv6 counterpart. */
  ip6tables?: string;
  /** How often bans longer than ipset's 24.8-day limit are re-timed (default 12 h). */
  refreshMs?: number;
}

const CAP_MS = IPSET_MAX_TIMEOUT_S * 1000;

export class IpsetEnforcer extends BaseEnforcer {
  readonly backend = "ipset" as const;
  private readonly names: IpsetNames;
  private readonly prefix: string[];
  private readonly iptables: [string, string];
  /** Bans longer than ipset can time: re-added before their capped timeout runs out. */
  private readonly long = new Map<string, { target: Op["target"]; expiresAt: number }>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly refreshMs: number;

  constructor(opts: IpsetOptions) {
    super(opts);
    this.names = ipsetNames(opts.settings.table);
    this.prefix = netnsPrefix(opts.netns);
    this.iptables = [opts.iptables ?? "iptables", opts.ip6tables ?? "ip6tables"];
    for (const p of this.iptables)
      if (!/^ip6?tables(-legacy|-nft)?$/.test(p))
        throw new SipwardenError("CONFIG_INVALID", `bad iptables program ${p}`);
    this.refreshMs = opts.refreshMs ?? 12 * 3_600_000;
  }

  protected async setup(): Promise<void> {
    await this.exec(["ipset", "restore", "-exist"], "setup sets", `${createLines(this.names).join("\n")}\n`);
    const want = hookFor(this.settings.action);
    const other = hookFor(this.settings.action === "drop" ? "reject" : "drop");
    for (const [i, ipt] of this.iptables.entries()) {
      const family = i === 0 ? 4 : 6;
      await this.exec(
        [`${ipt}-restore`, "-w", "--noflush"],
        `setup ${ipt}`,
        chainRestore(this.names, this.settings, family),
      );
      const t = ["-t", want.table];
      const present = await this.tryExec([ipt, "-w", ...t, "-C", want.chain, "-j", this.names.chain]);
      if (!present)
        await this.exec([ipt, "-w", ...t, "-I", want.chain, "1", "-j", this.names.chain], `setup ${ipt} jump`);
      // A switch between drop and reject leaves the old hook behind: remove it.
      await this.removeHook(ipt, other.table, other.chain);
    }
    this.scheduleRefresh();
  }

  protected async applyOps(ops: Op[]): Promise<void> {
    const now = this.now();
    const lines: string[] = [];
    for (const op of ops) {
      const set = this.names.sets[kindFor(op.target)];
      if (op.kind === "add" && (op.expiresAt === null || op.expiresAt > now))
        lines.push(addLine(set, op.target.text, op.expiresAt === null ? null : op.expiresAt - now));
      else lines.push(delLine(set, op.target.text));
    }
    await this.exec(["ipset", "restore", "-exist"], `batch of ${ops.length}`, `${lines.join("\n")}\n`);
    this.counters.batches++;
    for (const op of ops) this.trackLong(op.target, op.kind === "add" ? op.expiresAt : undefined, now);
  }

  protected async doReconcile(check: () => Map<string, Desired>): Promise<ReconcileResult> {
    const listing = this.read();
    // Checked while ipset lists, in parallel on another core.
    let desired: Map<string, Desired>;
    try {
      desired = check();
    } catch (e) {
      await listing.catch(() => {});
      throw e;
    }
    const listed = await listing;
    const now = this.now();
    const result: ReconcileResult = { added: 0, removed: 0, kept: 0 };
    const lines: string[] = [];
    const seen = new Set<string>();
    for (const k of listed) {
      const d = desired.get(k.text);
      const set = this.names.sets[k.kind];
      if (d && kindFor(d.target) === k.kind && !seen.has(k.text)) {
        seen.add(k.text);
        if (this.keeps(k, d.expiresAt, now)) {
          result.kept++;
          continue;
        }
        lines.push(addLine(set, k.text, d.expiresAt === null ? null : d.expiresAt - now));
        result.added++;
        continue;
      }
      lines.push(delLine(set, k.text));
      result.removed++;
    }
    for (const [text, d] of desired) {
      if (seen.has(text)) continue;
      lines.push(addLine(this.names.sets[kindFor(d.target)], text, d.expiresAt === null ? null : d.expiresAt - now));
      result.added++;
    }
    if (lines.length > 0) {
      await this.exec(["ipset", "restore", "-exist"], "reconcile", `${lines.join("\n")}\n`);
      this.counters.batches++;
    }
    this.long.clear();
    for (const d of desired.values()) this.trackLong(d.target, d.expiresAt, now);
    return result;
  }

  protected async doList(): Promise<BanEntry[]> {
    const now = this.now();
    return (await this.read()).map((e) => ({
      target: e.text,
      expiresAt: e.timeout === 0 ? null : now + e.timeout * 1000,
    }));
  }

  protected async doDestroy(): Promise<void> {
    for (const ipt of this.iptables) {
      for (const h of [hookFor("drop"), hookFor("reject")]) await this.removeHook(ipt, h.table, h.chain);
    }
    for (const k of IPSET_KINDS) await this.tryExec(["ipset", "destroy", this.names.sets[k]]);
    this.long.clear();
  }

  protected async shutdown(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** A listed entry is right when its remaining time matches, or, for a capped long ban, is still long. */
  private keeps(k: IpsetElement, wanted: Expiry, now: number): boolean {
    const kernel = k.timeout === 0 ? null : now + k.timeout * 1000;
    if (wanted !== null && kernel !== null && wanted - now > CAP_MS) return k.timeout * 1000 > CAP_MS / 2;
    return this.sameExpiry(kernel, wanted, now);
  }

  private trackLong(target: Op["target"], expiresAt: Expiry | undefined, now: number): void {
    if (expiresAt !== undefined && expiresAt !== null && expiresAt - now > CAP_MS)
      this.long.set(target.text, { target, expiresAt });
    else this.long.delete(target.text);
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setInterval(() => {
      for (const { target, expiresAt } of this.long.values())
        this.batcher.submit({ kind: "add", target, expiresAt }).catch(() => {});
    }, this.refreshMs);
    this.refreshTimer.unref();
  }

  /** Removes our jump from `table`/`chain` (every copy) and deletes the own chain there. */
  private async removeHook(ipt: string, table: string, chain: string): Promise<void> {
    for (let i = 0; i < 10; i++)
      if (!(await this.tryExec([ipt, "-w", "-t", table, "-D", chain, "-j", this.names.chain]))) break;
    if (await this.tryExec([ipt, "-w", "-t", table, "-F", this.names.chain]))
      await this.tryExec([ipt, "-w", "-t", table, "-X", this.names.chain]);
  }

  private async read(): Promise<IpsetElement[]> {
    const out: IpsetElement[] = [];
    for (const k of IPSET_KINDS) {
      const r = await this.runTimed(["ipset", "save", this.names.sets[k]], "list");
      if (r.code !== 0) {
        if (/does not exist/.test(r.stderr)) continue;
        throw new SipwardenError("ENFORCER_FAILED", `ipset save failed: ${clipStderr(r.stderr)}`);
      }
      out.push(...parseIpsetSave(r.stdout, this.names));
    }
    return out;
  }

  /** Runs a command that must succeed. */
  private async exec(argv: string[], what: string, input?: string): Promise<void> {
    const r = await this.runTimed(argv, what, input);
    if (r.code !== 0)
      throw new SipwardenError(
        "ENFORCER_FAILED",
        `${argv[0]} ${what} failed (exit ${r.code}): ${clipStderr(r.stderr)}`,
      );
  }

  /** Runs a command whose failure is an answer (a check, or a cleanup of what may not exist). */
  private async tryExec(argv: string[]): Promise<boolean> {
    const r = await runCommand([...this.prefix, ...argv], { timeoutMs: 30_000 });
    return r.code === 0;
  }

  private async runTimed(argv: string[], what: string, input?: string) {
    const r = await runCommand([...this.prefix, ...argv], { input, timeoutMs: 60_000 });
    this.noteCommand(argv[0]!, what, r.ms, r.code === 0 || (what === "list" && /does not exist/.test(r.stderr)));
    return r;
  }
}
