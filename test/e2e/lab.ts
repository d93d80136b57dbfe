/**
 * The SIP lab, on the shared namespace helper (test/helpers/netns.ts): one bridge in its own
 * namespace, one namespace per node, and no default route anywhere.
 *
 *   e2epbx  203.0.113.10   Kamailio 5.6 + a typical host firewall (+ sipwarden, when wired)
 *   e2ecli  192.0.2.50     the legitimate client (sipp, user 1001)
 *   e2ea1   198.51.100.11  svwar
 *   e2ea2   198.51.100.12  svcrack
 *   e2ea3   198.51.100.13  the UDP/TCP flood (sipp)
 *   e2ea4   198.51.100.14  the forger: lines meant to get 192.0.2.50 banned (scenario 5)
 *
 * The helper gives every node an on-link default route; the lab replaces it with on-link routes
 * to the three documentation /24s only. Each non-PBX node counts, in its own OUTPUT hook, the
 * packets it sends to the PBX's SIP port: the "packets sent" of the summary, whatever the tool.
 *
 * Teardown is idempotent and also runs on SIGINT/SIGTERM. Namespaces of an e2e run that died
 * (owner PID gone, node name `e2e…`) are removed with the processes still inside them, which
 * only such a run can have started.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLab, type Lab } from "../helpers/netns.js";
import { Kamailio, type LogMode } from "./kamailio.js";
import { killAllStarted, mustRun, runSync } from "./procs.js";

export const ADDR = {
  pbx: "203.0.113.10",
  client: "192.0.2.50",
  scanner: "198.51.100.11",
  cracker: "198.51.100.12",
  flooder: "198.51.100.13",
  forger: "198.51.100.14",
} as const;

export type Role = "pbx" | "cli" | "a1" | "a2" | "a3" | "a4";
export type Sender = Exclude<Role, "pbx">;

export const ROLE_OF: Record<Exclude<keyof typeof ADDR, "pbx" | "client">, Exclude<Sender, "cli">> = {
  scanner: "a1",
  cracker: "a2",
  flooder: "a3",
  forger: "a4",
};

const NODES: [Role, string][] = [
  ["pbx", ADDR.pbx],
  ["cli", ADDR.client],
  ["a1", ADDR.scanner],
  ["a2", ADDR.cracker],
  ["a3", ADDR.flooder],
  ["a4", ADDR.forger],
];
const NETS = ["203.0.113.0/24", "192.0.2.0/24", "198.51.100.0/24"];
/** Node names carry this prefix so that a later run can recognise this lab's namespaces. */
const NODE_PREFIX = "e2e";
const STALE = new RegExp(`^swlab-(\\d+)-[0-9a-f]+-${NODE_PREFIX}[a-z0-9]+$`);

/** The host firewall an operator typically has: established first, then the SIP ports, policy drop. */
export const HOST_FIREWALL = `
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    ct state invalid drop
    meta l4proto { icmp, ipv6-icmp } accept
    udp dport 5060 accept
    tcp dport 5060 accept
  }
}
`;

function senderCounters(pbx: string): string {
  return `
table inet labcount {
  counter udp_sip { }
  counter tcp_sip { }
  chain out {
    type filter hook output priority filter; policy accept;
    ip daddr ${pbx} udp dport 5060 counter name "udp_sip"
    ip daddr ${pbx} tcp dport 5060 counter name "tcp_sip"
  }
}
`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Namespaces present on the host, by name. */
export function listNamespaces(): string[] {
  return (runSync("ip", ["netns", "list"]) ?? "")
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

/** Namespaces made by this process's labs that still exist (the hub included). */
export function ownNamespaces(): string[] {
  return listNamespaces().filter((n) => n.startsWith(`swlab-${process.pid}-`));
}

/** Ends the processes inside a namespace (by PID) and deletes it. */
function removeNamespace(ns: string): void {
  const pids = (runSync("ip", ["netns", "pids", ns]) ?? "").split("\n").map(Number);
  for (const pid of pids)
    if (Number.isInteger(pid) && pid > 0)
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
  runSync("ip", ["netns", "del", ns]);
}

const WORKDIR_PREFIX = "sipwarden-e2e-";

/** Removes what e2e runs that died left behind: their namespaces (and processes) and work directories. */
export function cleanupLeftovers(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = STALE.exec(ns);
    if (!m || isAlive(Number(m[1]))) continue;
    removeNamespace(ns);
    removed.push(ns);
  }
  for (const name of readdirSync(tmpdir())) {
    const m = new RegExp(`^${WORKDIR_PREFIX}(\\d+)-`).exec(name);
    if (m && !isAlive(Number(m[1]))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  return removed;
}

export interface LabOptions {
  /** pike density per 2 s (see kamailio.cfg). */
  pikeDensity?: number;
  /** How Kamailio's log reaches the file (see kamailio.ts). Default "syslog". */
  logMode?: LogMode;
  /** Keep the work directory after teardown (for debugging). */
  keepWorkDir?: boolean;
}

export class SipLab {
  readonly workDir: string;
  #lab: Lab | null = null;
  #kamailio: Kamailio | null = null;
  #closed = false;
  #onSignal = (sig: NodeJS.Signals) => {
    this.#teardownSync();
    process.kill(process.pid, sig);
  };

  private constructor(readonly opts: LabOptions) {
    cleanupLeftovers();
    this.workDir = mkdtempSync(join(tmpdir(), `${WORKDIR_PREFIX}${process.pid}-`));
    process.once("SIGINT", this.#onSignal);
    process.once("SIGTERM", this.#onSignal);
  }

  /** Builds the namespaces, routes, host firewall and counters, then starts Kamailio. */
  static async create(opts: LabOptions = {}): Promise<SipLab> {
    const lab = new SipLab(opts);
    try {
      lab.#lab = await createLab({
        nodes: NODES.map(([role, ip]) => ({ name: `${NODE_PREFIX}${role}`, addrs: [`${ip}/24`] })),
      });
      for (const [role, ip] of NODES) {
        const ns = lab.ns(role);
        const own = NETS.find((n) => n.startsWith(ip.split(".").slice(0, 3).join(".")));
        await mustRun("ip", ["-n", ns, "route", "del", "default"], { timeoutMs: 5000 });
        for (const net of NETS)
          if (net !== own) await mustRun("ip", ["-n", ns, "route", "add", net, "dev", "eth0"], { timeoutMs: 5000 });
      }
      await lab.nft("pbx", HOST_FIREWALL);
      for (const [role] of NODES) if (role !== "pbx") await lab.nft(role, senderCounters(ADDR.pbx));
      lab.#kamailio = await Kamailio.start({
        ns: lab.ns("pbx"),
        ip: ADDR.pbx,
        workDir: lab.workDir,
        logMode: opts.logMode ?? "syslog",
        ...(opts.pikeDensity !== undefined ? { pikeDensity: opts.pikeDensity } : {}),
      });
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  ns(role: Role): string {
    if (!this.#lab) throw new Error("the lab is not built");
    return this.#lab.ns(`${NODE_PREFIX}${role}`);
  }

  get kamailio(): Kamailio {
    if (!this.#kamailio) throw new Error("kamailio is not running");
    return this.#kamailio;
  }

  /** Loads an nft ruleset (text) in a node's namespace. */
  nft(role: Role, ruleset: string): Promise<string> {
    return mustRun("nft", ["-f", "-"], { ns: this.ns(role), timeoutMs: 10_000, input: ruleset });
  }

  /** Packets a node has sent to the PBX's SIP port so far, per transport (its own OUTPUT counter). */
  async sent(role: Sender): Promise<{ udp: number; tcp: number }> {
    const out = await mustRun("nft", ["-j", "list", "counters", "table", "inet", "labcount"], {
      ns: this.ns(role),
      timeoutMs: 5000,
    });
    const res = { udp: 0, tcp: 0 };
    const j = JSON.parse(out) as { nftables: { counter?: { name: string; packets: number } }[] };
    for (const o of j.nftables) {
      if (o.counter?.name === "udp_sip") res.udp = o.counter.packets;
      if (o.counter?.name === "tcp_sip") res.tcp = o.counter.packets;
    }
    return res;
  }

  /** Stops Kamailio, removes every namespace and (unless kept) the work directory. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#kamailio?.stop();
    } finally {
      killAllStarted();
      await this.#lab?.cleanup();
      this.#teardownSync();
    }
  }

  /** The synchronous part of teardown, also used from signal handlers. */
  #teardownSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    process.removeListener("SIGINT", this.#onSignal);
    process.removeListener("SIGTERM", this.#onSignal);
    killAllStarted();
    const id = this.#lab?.id;
    if (id) for (const ns of listNamespaces()) if (ns.startsWith(`${id}-`)) removeNamespace(ns);
    if (!this.opts.keepWorkDir) rmSync(this.workDir, { recursive: true, force: true });
  }
}
