/**
 * The ipset + iptables backend against a real kernel, in the same namespace lab as the
 * nftables test. Needs root; skipped elsewhere except under CI=true.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SipwardenError } from "../../src/core/errors.js";
import { IpsetEnforcer } from "../../src/enforce/ipset.js";
import { labSkip } from "../helpers/netns.js";
import { crashMidway, listed, quietListing, settings } from "./lab-common.js";
import {
  ATTACKER,
  ATTACKER_EXP,
  ATTACKER_TCP,
  ATTACKER6,
  CLIENT,
  CLIENT6,
  conntrackCount,
  createSipLab,
  iptablesDropped,
  type SipLab,
  until,
} from "./sip-lab.js";

const skip = labSkip(["ipset", "iptables", "ip6tables", "conntrack", "nft"]);
const HOUR = 3_600_000;

describe("ipset backend in a namespace lab", { skip }, () => {
  let L: SipLab;
  let enf: IpsetEnforcer;
  const errors: SipwardenError[] = [];
  const warnings: string[] = [];

  const make = () =>
    new IpsetEnforcer({
      settings: settings(),
      netns: L.lab.ns("server"),
      backoffMs: 50,
      hooks: { onError: (e) => errors.push(e), onWarn: (m) => warnings.push(m) },
    });
  const dropped = () => iptablesDropped(L.lab);
  const udpFrom = async (ip: string) => (await L.counts()).udp[ip] ?? 0;
  const tcpFrom = async (ip: string) => (await L.counts()).tcp[ip] ?? 0;
  const barrier = async () => {
    const n = await udpFrom(CLIENT);
    await L.client.send("udp 1");
    await until("the client's packet", async () => (await udpFrom(CLIENT)) === n + 1);
  };
  const jumps = async () => {
    const r = await L.lab.exec("server", ["iptables", "-w", "-t", "raw", "-S", "PREROUTING"]);
    return r.stdout.split("\n").filter((l) => l.includes("-j sipwarden")).length;
  };

  before(async () => {
    L = await createSipLab();
    enf = make();
    await enf.start();
  });
  after(async () => {
    await enf?.close().catch(() => {});
    await L?.cleanup();
  });

  test("an established UDP flow stops at the next packet, and its conntrack entry is flushed", async () => {
    await L.attacker.send("udp 3");
    await until("3 attacker datagrams", async () => (await udpFrom(ATTACKER)) === 3);
    await until("the server's replies", async () => (await L.attacker.send("replies")).replies === 3);
    assert.ok((await conntrackCount(L.lab, ATTACKER)) >= 1);
    await enf.add({ target: ATTACKER, expiresAt: Date.now() + HOUR });
    const d0 = await dropped();
    await L.attacker.send("udp 1");
    await until("the drop counter", async () => (await dropped()) >= d0 + 1);
    await barrier();
    assert.equal(await udpFrom(ATTACKER), 3, "the very next datagram was dropped");
    await until("conntrack flush", async () => (await conntrackCount(L.lab, ATTACKER)) === 0);
  });

  test("TCP: an open connection stops at the next segment and new connections fail", async () => {
    assert.deepEqual(await L.attackerTcp.send("connect 3000"), { connected: true });
    await L.attackerTcp.send("tcp 2");
    await until("2 TCP lines", async () => (await tcpFrom(ATTACKER_TCP)) === 2);
    await enf.add({ target: ATTACKER_TCP, expiresAt: Date.now() + HOUR });
    const d0 = await dropped();
    await L.attackerTcp.send("tcp 1");
    await until("the drop counter", async () => (await dropped()) >= d0 + 1);
    await barrier();
    assert.equal(await tcpFrom(ATTACKER_TCP), 2);
    assert.equal((await L.attackerTcp.send("connect 1500")).connected, false);
    await L.attackerTcp.send("close");
  });

  test("an IPv6 /64 ban blocks the network; the legitimate clients are unaffected", async () => {
    await L.attacker6.send("udp 1");
    await until("attacker6 before the ban", async () => (await udpFrom(ATTACKER6)) === 1);
    await enf.add({ target: "2001:db8:bad::/64", expiresAt: null });
    const d0 = await dropped();
    await L.attacker6.send("udp 1");
    await until("the drop counter", async () => (await dropped()) >= d0 + 1);
    const c = await L.counts();
    await L.client.send("udp 2");
    await L.client6.send("udp 2");
    await until("both clients", async () => {
      const n = await L.counts();
      return n.udp[CLIENT] === (c.udp[CLIENT] ?? 0) + 2 && n.udp[CLIENT6] === (c.udp[CLIENT6] ?? 0) + 2;
    });
    assert.equal(await udpFrom(ATTACKER6), 1);
  });

  test("unban and expiry restore access", async () => {
    const u = await udpFrom(ATTACKER);
    await enf.remove(ATTACKER);
    await L.attacker.send("udp 1");
    await until("the attacker's datagram", async () => (await udpFrom(ATTACKER)) === u + 1);
    await enf.remove(ATTACKER_TCP);
    await enf.remove("2001:db8:bad::/64");

    const d0 = await dropped();
    await enf.add({ target: ATTACKER_EXP, expiresAt: Date.now() + 2000 });
    await L.attackerExp.send("udp 1");
    await until("the drop counter", async () => (await dropped()) >= d0 + 1);
    await barrier();
    assert.equal(await udpFrom(ATTACKER_EXP), 0);
    await until("the entry to expire", async () => !(await listed(enf)).has(ATTACKER_EXP));
    await L.attackerExp.send("udp 1");
    await until("the datagram after expiry", async () => (await udpFrom(ATTACKER_EXP)) === 1);
    assert.equal(errors.length, 0, errors.map((e) => e.message).join("\n"));
  });

  test("reconcile after a crash restores the store, removes strays and duplicates nothing", async () => {
    await enf.close();
    const ns = L.lab.ns("server");
    const childExpiry = Date.now() + HOUR;
    await crashMidway("ipset", ns, childExpiry, 100);
    const before = await quietListing(make());

    const now = Date.now();
    const store = [
      ...Array.from({ length: 30 }, (_, i) => ({ target: `10.77.0.${i}`, expiresAt: childExpiry })),
      ...Array.from({ length: 20 }, (_, i) => ({ target: `10.77.0.${30 + i}`, expiresAt: now + HOUR / 2 })),
      ...Array.from({ length: 20 }, (_, i) => ({ target: `10.78.0.${i}`, expiresAt: now + HOUR })),
      { target: "10.79.0.1", expiresAt: now - 1000 },
      { target: "203.0.113.10", expiresAt: null },
      { target: "192.0.2.0/25", expiresAt: now + 2 * HOUR },
    ];
    enf = make();
    await enf.start();
    await enf.start();
    assert.equal(await jumps(), 1, "one jump in PREROUTING, however often it started");
    const r = await enf.reconcile(store);
    assert.deepEqual(r, { kept: 30, added: 41, removed: before.size - 50 });
    assert.ok(
      warnings.some((w) => w.includes("203.0.113.10")),
      "the server's own address is refused",
    );
    const after = await listed(enf);
    assert.equal(after.size, 71);
    assert.ok(!after.has("10.77.0.60") && after.has("10.78.0.19") && after.has("192.0.2.0/25"));
    assert.ok(Math.abs(after.get("10.77.0.35")! - (now + HOUR / 2)) < 3000, "restored with the remaining time");
    assert.deepEqual(await enf.reconcile(store), { kept: 71, added: 0, removed: 0 });
  });

  test("destroy removes the sets, the chain and the jump", async () => {
    await enf.destroy();
    assert.equal(await jumps(), 0);
    const sets = await L.lab.exec("server", ["ipset", "list", "-n"]);
    assert.doesNotMatch(sets.stdout, /sipwarden/);
  });
});
