/**
 * The nftables backend against a real kernel, in namespaces this test creates: a SIP server
 * behind a firewall that accepts established traffic first, attackers and a legitimate client
 * sending bounded UDP and TCP traffic. Needs root; skipped elsewhere except under CI=true.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SipwardenError } from "../../src/core/errors.js";
import { NftablesEnforcer } from "../../src/enforce/nftables.js";
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
  HOST_FIREWALL,
  nftDropped,
  type SipLab,
  until,
} from "./sip-lab.js";

const skip = labSkip(["nft", "conntrack"]);
const HOUR = 3_600_000;

describe("nftables backend in a namespace lab", { skip }, () => {
  let L: SipLab;
  let enf: NftablesEnforcer;
  const errors: SipwardenError[] = [];
  const warnings: string[] = [];

  const make = () =>
    new NftablesEnforcer({
      settings: settings(),
      netns: L.lab.ns("server"),
      backoffMs: 50,
      maxAttempts: 8,
      hooks: { onError: (e) => errors.push(e), onWarn: (m) => warnings.push(m) },
    });
  const udpFrom = async (ip: string) => (await L.counts()).udp[ip] ?? 0;
  const tcpFrom = async (ip: string) => (await L.counts()).tcp[ip] ?? 0;
  /** The client's packet travels the same bridge: once it has arrived, an earlier one would have too. */
  const barrier = async () => {
    const n = await udpFrom(CLIENT);
    await L.client.send("udp 1");
    await until("the client's packet", async () => (await udpFrom(CLIENT)) === n + 1);
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

  test("baseline: a drop rule after 'ct state established accept' misses an established UDP flow", async () => {
    await L.attacker.send("udp 3");
    await until("3 attacker datagrams", async () => (await udpFrom(ATTACKER)) === 3);
    await until("the server's replies", async () => (await L.attacker.send("replies")).replies === 3);
    assert.ok((await conntrackCount(L.lab, ATTACKER)) >= 1, "the flow is tracked");
    // What a naive ban does: append a drop rule to the host's input chain.
    await L.lab.exec("server", [
      "nft",
      "add",
      "rule",
      "inet",
      "filter",
      "input",
      "ip",
      "saddr",
      ATTACKER,
      "counter",
      "drop",
    ]);
    await L.attacker.send("udp 2");
    await until("the flow to carry on", async () => (await udpFrom(ATTACKER)) === 5);
    const chain = await L.lab.exec("server", ["nft", "list", "chain", "inet", "filter", "input"]);
    assert.match(chain.stdout, new RegExp(`ip saddr ${ATTACKER.replace(/\./g, "\\.")} counter packets 0 bytes 0 drop`));
    await L.lab.exec("server", ["nft", "-f", "-"], { input: `delete table inet filter\n${HOST_FIREWALL}` });
  });

  test("an established UDP flow stops at the next packet, and its conntrack entry is flushed", async () => {
    const before = await udpFrom(ATTACKER);
    assert.equal(before, 5);
    await enf.add({ target: ATTACKER, expiresAt: Date.now() + HOUR });
    const d0 = await nftDropped(L.lab);
    await L.attacker.send("udp 1");
    await until("the drop counter", async () => (await nftDropped(L.lab)) >= d0 + 1);
    await barrier();
    assert.equal(await udpFrom(ATTACKER), before, "the very next datagram was dropped");
    await L.attacker.send("udp 5");
    await until("five more drops", async () => (await nftDropped(L.lab)) >= d0 + 6);
    await barrier();
    assert.equal(await udpFrom(ATTACKER), before);
    await until("conntrack flush", async () => (await conntrackCount(L.lab, ATTACKER)) === 0);
    await enf.settled();
    assert.ok(enf.stats().conntrackDeleted >= 1, "the flush deleted the flow");
  });

  test("TCP: an open connection stops at the next segment and new connections fail", async () => {
    assert.deepEqual(await L.attackerTcp.send("connect 3000"), { connected: true });
    await L.attackerTcp.send("tcp 2");
    await until("2 TCP lines", async () => (await tcpFrom(ATTACKER_TCP)) === 2);
    await enf.add({ target: ATTACKER_TCP, expiresAt: Date.now() + HOUR });
    const d0 = await nftDropped(L.lab);
    await L.attackerTcp.send("tcp 1");
    await until("the drop counter", async () => (await nftDropped(L.lab)) >= d0 + 1);
    await barrier();
    assert.equal(await tcpFrom(ATTACKER_TCP), 2, "the next segment was dropped");
    const again = await L.attackerTcp.send("connect 1500");
    assert.equal(again.connected, false);
    assert.equal((await L.counts()).conns[ATTACKER_TCP], 1, "no new connection reached the server");
    await L.attackerTcp.send("close");
  });

  test("the legitimate client is never affected, over UDP, TCP and IPv6", async () => {
    const c = await L.counts();
    await L.client.send("udp 4");
    assert.deepEqual(await L.client.send("connect 3000"), { connected: true });
    await L.client.send("tcp 3");
    await L.client6.send("udp 2");
    await until("the client's traffic", async () => {
      const n = await L.counts();
      return (
        n.udp[CLIENT] === (c.udp[CLIENT] ?? 0) + 4 &&
        n.tcp[CLIENT] === (c.tcp[CLIENT] ?? 0) + 3 &&
        n.udp[CLIENT6] === (c.udp[CLIENT6] ?? 0) + 2
      );
    });
    await L.client.send("close");
  });

  test("an IPv6 /64 ban blocks the attacker's network but not the client", async () => {
    await L.attacker6.send("udp 2");
    await until("attacker6 before the ban", async () => (await udpFrom(ATTACKER6)) === 2);
    await enf.add({ target: "2001:db8:bad::/64", expiresAt: null });
    const d0 = await nftDropped(L.lab);
    await L.attacker6.send("udp 1");
    await until("the drop counter", async () => (await nftDropped(L.lab)) >= d0 + 1);
    const c6 = await udpFrom(CLIENT6);
    await L.client6.send("udp 1");
    await until("client6", async () => (await udpFrom(CLIENT6)) === c6 + 1);
    assert.equal(await udpFrom(ATTACKER6), 2);
    assert.equal((await listed(enf)).get("2001:db8:bad::/64"), null);
  });

  test("unban restores access for UDP and TCP", async () => {
    const u = await udpFrom(ATTACKER);
    await enf.remove(ATTACKER);
    await L.attacker.send("udp 1");
    await until("the attacker's datagram", async () => (await udpFrom(ATTACKER)) === u + 1);
    await enf.remove(ATTACKER_TCP);
    assert.deepEqual(await L.attackerTcp.send("connect 3000"), { connected: true });
    const t = await tcpFrom(ATTACKER_TCP);
    await L.attackerTcp.send("tcp 1");
    await until("the TCP line", async () => (await tcpFrom(ATTACKER_TCP)) >= t + 1);
    await L.attackerTcp.send("close");
    await enf.remove("2001:db8:bad::/64");
    const bans = await listed(enf);
    assert.ok(!bans.has(ATTACKER) && !bans.has(ATTACKER_TCP) && !bans.has("2001:db8:bad::/64"));
  });

  test("a ban expires in the kernel by itself and access returns", async () => {
    // The packet goes first: on a loaded machine the listing below can take a while.
    const d0 = await nftDropped(L.lab);
    await enf.add({ target: ATTACKER_EXP, expiresAt: Date.now() + 2000 });
    await L.attackerExp.send("udp 1");
    await until("the drop counter", async () => (await nftDropped(L.lab)) >= d0 + 1);
    await barrier();
    assert.equal(await udpFrom(ATTACKER_EXP), 0);
    const left = (await listed(enf)).get(ATTACKER_EXP);
    assert.ok(left === undefined || (typeof left === "number" && left - Date.now() <= 2000), "the ban's timeout");
    await until("the element to expire", async () => !(await listed(enf)).has(ATTACKER_EXP));
    await L.attackerExp.send("udp 1");
    await until("the datagram after expiry", async () => (await udpFrom(ATTACKER_EXP)) === 1);
  });

  test("a killed nft helper loses no ban: the batch goes through a fresh nft process", async () => {
    const pid = enf.helperPid;
    assert.ok(pid, "a persistent nft -i runs");
    process.kill(pid, "SIGKILL");
    await until("the helper's death to be noticed", async () => warnings.some((w) => /nft -i exited/.test(w)));
    await enf.add({ target: "198.51.100.97", expiresAt: Date.now() + HOUR });
    assert.ok((await listed(enf)).has("198.51.100.97"));
    // After the back-off it starts again.
    await new Promise((r) => setTimeout(r, 300));
    await enf.add({ target: "198.51.100.96", expiresAt: Date.now() + HOUR });
    assert.ok(enf.helperPid && enf.helperPid !== pid);
  });

  test("a failing nft command is reported with its stderr, retried, and lands once fixed", async () => {
    errors.length = 0;
    // An operator flushes the ruleset under the running enforcer.
    await L.lab.exec("server", ["nft", "delete", "table", "inet", "sipwarden"]);
    const pending = enf.add({ target: "198.51.100.98", expiresAt: Date.now() + HOUR });
    await until("the error report", async () => errors.length > 0);
    assert.equal(errors[0]!.code, "ENFORCER_FAILED");
    assert.match(errors[0]!.message, /No such file or directory/);
    assert.ok(enf.stats().retries >= 1);
    await enf.start();
    await pending;
    assert.ok((await listed(enf)).has("198.51.100.98"));
  });

  test("reconcile after a crash restores the store, removes strays and duplicates nothing", async () => {
    await enf.close();
    const ns = L.lab.ns("server");
    const childExpiry = Date.now() + HOUR;
    const reported = await crashMidway("nftables", ns, childExpiry, 100);
    // The dead run's nft helper may still finish the line it had read.
    const before = await quietListing(make());
    assert.ok(before.size >= reported, `the crashed run left ${before.size} elements`);

    const now = Date.now();
    const store = [
      ...Array.from({ length: 30 }, (_, i) => ({ target: `10.77.0.${i}`, expiresAt: childExpiry })),
      ...Array.from({ length: 20 }, (_, i) => ({ target: `10.77.0.${30 + i}`, expiresAt: now + HOUR / 2 })),
      ...Array.from({ length: 20 }, (_, i) => ({ target: `10.78.0.${i}`, expiresAt: now + HOUR })),
      { target: "10.78.0.1", expiresAt: now + HOUR },
      { target: "10.79.0.1", expiresAt: now - 1000 },
      { target: "127.0.0.1", expiresAt: null },
      { target: "192.0.2.0/25", expiresAt: now + 2 * HOUR },
    ];
    enf = make();
    await enf.start();
    await enf.start();
    const r = await enf.reconcile(store);
    assert.deepEqual(r, { kept: 30, added: 41, removed: before.size - 50 });
    assert.ok(
      warnings.some((w) => w.includes("127.0.0.1")),
      "the refused entry is reported",
    );

    const after = await listed(enf);
    const want = new Set([...store.filter((s) => s.expiresAt === null || s.expiresAt > now).map((s) => s.target)]);
    want.delete("127.0.0.1");
    assert.deepEqual(new Set(after.keys()), want);
    const retimed = after.get("10.77.0.35")!;
    assert.ok(Math.abs(retimed - (now + HOUR / 2)) < 3000, "restored with the remaining time, not the original");
    assert.equal(await enf.ruleCount(), 4, "one rule per set, however often it started");

    const again = await enf.reconcile(store);
    assert.deepEqual(again, { kept: 71, added: 0, removed: 0 }, "a second reconcile changes nothing");
  });

  test("nested network bans become disjoint pieces that keep each address's longest ban", async () => {
    const now = Date.now();
    const store = [
      { target: "198.51.100.0/24", expiresAt: now + HOUR },
      { target: "198.51.100.0/25", expiresAt: now + 2 * HOUR },
      { target: "198.51.100.7", expiresAt: now + 3 * HOUR },
    ];
    await enf.reconcile(store);
    const bans = await listed(enf);
    assert.deepEqual([...bans.keys()].sort(), ["198.51.100.0/25", "198.51.100.128/25", "198.51.100.7"]);
    assert.ok(Math.abs(bans.get("198.51.100.0/25")! - (now + 2 * HOUR)) < 3000);
    assert.ok(Math.abs(bans.get("198.51.100.128/25")! - (now + HOUR)) < 3000);
    const hit = await L.lab.exec("server", [
      "nft",
      "get",
      "element",
      "inet",
      "sipwarden",
      "net4",
      "{ 198.51.100.200 }",
    ]);
    assert.match(hit.stdout, /198\.51\.100\.128\/25/);
    // Lifting the /25 leaves its half to the /24.
    await enf.remove("198.51.100.0/25");
    const after = await listed(enf);
    assert.ok(Math.abs(after.get("198.51.100.0/24")! - (now + HOUR)) < 3000, [...after.keys()].join());
    assert.deepEqual(await enf.reconcile(store.filter((b) => b.target !== "198.51.100.0/25")), {
      kept: 2,
      added: 0,
      removed: 0,
    });
  });

  test("destroy removes the table and nothing else", async () => {
    await enf.destroy();
    const tables = await L.lab.exec("server", ["nft", "list", "tables"]);
    assert.doesNotMatch(tables.stdout, /sipwarden/);
    assert.match(tables.stdout, /table inet filter/);
  });
});
