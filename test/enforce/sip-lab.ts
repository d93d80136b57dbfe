/**
 * The enforcement lab: a SIP server namespace behind a typical host firewall (established
 * traffic accepted first), attackers and a legitimate client, each with a bounded traffic
 * peer. Used by the nftables and ipset kernel tests.
 */
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createLab, type Lab } from "../helpers/netns.js";
import { ROOT } from "../helpers/paths.js";

export const SERVER = "203.0.113.10";
export const SERVER6 = "2001:db8:203::10";
export const ATTACKER = "198.51.100.7";
export const ATTACKER_TCP = "198.51.100.8";
export const ATTACKER_EXP = "198.51.100.9";
export const ATTACKER6 = "2001:db8:bad::7";
export const CLIENT = "192.0.2.50";
export const CLIENT6 = "2001:db8:192::50";
export const PORT = 5060;

const PEER = join(ROOT, "test", "enforce", "lab-peer.mjs");

/** What ufw, firewalld and hand-written rulesets do: accept established flows first. */
export const HOST_FIREWALL = `table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif lo accept
    meta l4proto ipv6-icmp accept
    udp dport ${PORT} accept
    tcp dport ${PORT} accept
  }
}
`;

/** One JSON-lines conversation with a lab peer. */
export class Peer {
  private readonly waiters: Array<(v: Record<string, unknown>) => void> = [];
  private readonly early: Record<string, unknown>[] = [];

  constructor(readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      const w = this.waiters.shift();
      if (w) w(msg);
      else this.early.push(msg);
    });
  }

  /** The next message (the `ready` greeting, or the answer to a command). */
  next(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const early = this.early.shift();
    if (early) return Promise.resolve(early);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("lab peer did not answer")), timeoutMs);
      this.waiters.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  }

  send(line: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${line}\n`);
    return this.next(timeoutMs);
  }
}

export interface Counts {
  udp: Record<string, number>;
  tcp: Record<string, number>;
  conns: Record<string, number>;
}

export interface SipLab {
  lab: Lab;
  server: Peer;
  attacker: Peer;
  attackerTcp: Peer;
  attackerExp: Peer;
  attacker6: Peer;
  client: Peer;
  client6: Peer;
  counts(): Promise<Counts>;
  cleanup(): Promise<void>;
}

async function startPeer(lab: Lab, node: string, args: string[]): Promise<Peer> {
  const p = new Peer(lab.spawn(node, [process.execPath, PEER, ...args]));
  const hello = await p.next(15_000);
  if (!hello.ready) throw new Error(`lab peer on ${node} did not start: ${JSON.stringify(hello)}`);
  return p;
}

export async function createSipLab(): Promise<SipLab> {
  const lab = await createLab({
    nodes: [
      { name: "server", addrs: [`${SERVER}/24`, `${SERVER6}/64`] },
      { name: "attacker", addrs: [`${ATTACKER}/24`, `${ATTACKER_TCP}/24`, `${ATTACKER_EXP}/24`, `${ATTACKER6}/64`] },
      { name: "client", addrs: [`${CLIENT}/24`, `${CLIENT6}/64`] },
    ],
  });
  try {
    await lab.exec("server", ["nft", "-f", "-"], { input: HOST_FIREWALL });
    const server = await startPeer(lab, "server", ["serve", String(PORT)]);
    const peer = (node: string, host: string, bind: string) =>
      startPeer(lab, node, ["client", host, String(PORT), bind]);
    const [attacker, attackerTcp, attackerExp, attacker6, client, client6] = await Promise.all([
      peer("attacker", SERVER, ATTACKER),
      peer("attacker", SERVER, ATTACKER_TCP),
      peer("attacker", SERVER, ATTACKER_EXP),
      peer("attacker", SERVER6, ATTACKER6),
      peer("client", SERVER, CLIENT),
      peer("client", SERVER6, CLIENT6),
    ]);
    return {
      lab,
      server,
      attacker,
      attackerTcp,
      attackerExp,
      attacker6,
      client,
      client6,
      counts: async () => (await server.send("stats")) as unknown as Counts,
      cleanup: () => lab.cleanup(),
    };
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
}

/** Polls `probe` until it returns true; fails after `timeoutMs` (generous: CI machines are busy). */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Sum of the packet counters of the sipwarden chain's rules (nftables backend). */
export async function nftDropped(lab: Lab, table = "sipwarden"): Promise<number> {
  const r = await lab.exec("server", ["nft", "-j", "list", "chain", "inet", table, "prerouting"]);
  let n = 0;
  for (const item of (JSON.parse(r.stdout) as { nftables: Array<{ rule?: { expr: unknown[] } }> }).nftables)
    for (const e of item.rule?.expr ?? []) {
      const c = (e as { counter?: { packets: number } }).counter;
      if (c) n += c.packets;
    }
  return n;
}

/** Sum of the packet counters of the own iptables chain (ipset backend), both families. */
export async function iptablesDropped(lab: Lab, chain = "sipwarden", table = "raw"): Promise<number> {
  let n = 0;
  for (const ipt of ["iptables", "ip6tables"]) {
    const r = await lab.exec("server", [ipt, "-w", "-t", table, "-L", chain, "-v", "-x", "-n"]);
    for (const line of r.stdout.split("\n").slice(2)) {
      const pkts = Number(line.trim().split(/\s+/)[0]);
      if (Number.isFinite(pkts)) n += pkts;
    }
  }
  return n;
}

/** Conntrack entries in the server namespace with `ip` as original source. */
export async function conntrackCount(lab: Lab, ip: string): Promise<number> {
  const fam = ip.includes(":") ? ["-f", "ipv6"] : [];
  const r = await lab.exec("server", ["conntrack", "-L", ...fam, "-s", ip], { allowFail: true });
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}
