/**
 * The two kernel-facing helpers on their own, against real nft and conntrack in a namespace:
 * the persistent `nft -i` protocol (completion markers, error attribution, atomicity, the
 * spawn fallback) and the conntrack flush in both directions. Needs root.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { ConntrackFlusher } from "../../src/enforce/conntrack.js";
import { parseTarget } from "../../src/enforce/guard.js";
import { NftClient } from "../../src/enforce/nft-process.js";
import { createLab, type Lab, labSkip } from "../helpers/netns.js";

const skip = labSkip(["nft", "conntrack"]);

describe("kernel tools in a namespace", { skip }, () => {
  let lab: Lab;
  let nft: NftClient;
  const elements = async () => {
    const r = await lab.exec("box", ["nft", "-j", "list", "set", "inet", "t", "s"]);
    const set = (JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> }).nftables.find(
      (i) => i.set,
    );
    return (set?.set?.elem ?? [])
      .map((e) => (typeof e === "string" ? e : (e as { elem: { val: string } }).elem.val))
      .sort();
  };

  before(async () => {
    lab = await createLab({ nodes: [{ name: "box" }] });
    nft = new NftClient({ netns: lab.ns("box") });
    await nft.apply(["add table inet t", "add set inet t s { type ipv4_addr; flags timeout; }"]);
  });
  after(async () => {
    await nft?.close();
    await lab?.cleanup();
  });

  test("transactions go through one persistent nft -i and report success", async () => {
    const r = await nft.apply(["add element inet t s { 198.51.100.1 timeout 1h }"]);
    assert.equal(r.via, "interactive");
    assert.ok(nft.interactivePid);
    assert.deepEqual(await elements(), ["198.51.100.1"]);
  });

  test("a failing transaction rejects with nft's stderr and applies nothing", async () => {
    await assert.rejects(
      nft.apply(["add element inet t s { 198.51.100.2 }", "add element inet t nosuch { 198.51.100.3 }"]),
      (e: unknown) => isSipwardenError(e, "ENFORCER_FAILED") && /No such file or directory/.test((e as Error).message),
    );
    assert.deepEqual(await elements(), ["198.51.100.1"], "atomic: the valid half did not land either");
  });

  test("pipelined transactions each get their own outcome", async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        nft
          .apply([i % 3 === 0 ? `add element inet t nosuch { 10.0.0.${i} }` : `add element inet t s { 10.0.0.${i} }`])
          .then(
            () => "ok",
            () => "failed",
          ),
      ),
    );
    results.forEach((r, i) => {
      assert.equal(r, i % 3 === 0 ? "failed" : "ok", `transaction ${i}`);
    });
    assert.equal((await elements()).filter((e) => e.startsWith("10.0.0.")).length, 26);
  });

  test("large scripts and the non-interactive mode use a fresh nft -f -", async () => {
    const many = Array.from({ length: 5000 }, (_, i) => `10.1.${i >> 8}.${i & 255} timeout 1h`);
    const r = await nft.apply([`add element inet t s { ${many.join(", ")} }`]);
    assert.equal(r.via, "spawn");
    const plain = new NftClient({ netns: lab.ns("box"), interactive: false });
    assert.equal((await plain.apply(["add element inet t s { 198.51.100.9 }"])).via, "spawn");
    await assert.rejects(plain.apply(["add element inet t nosuch { 198.51.100.9 }"]), /No such file/);
    await plain.close();
    assert.equal((await elements()).length, 1 + 26 + 5000 + 1);
  });

  test("conntrack flush deletes the address's flows in both directions, and a network's", async () => {
    const ins = (src: string, dst: string, sport: number, dport: number) =>
      lab.exec("box", [
        "conntrack",
        "-I",
        "-s",
        src,
        "-d",
        dst,
        "-p",
        "udp",
        "--sport",
        String(sport),
        "--dport",
        String(dport),
        "--timeout",
        "120",
      ]);
    await ins("198.51.100.7", "203.0.113.10", 5000, 5060);
    await ins("203.0.113.10", "198.51.100.7", 6000, 7000);
    await ins("198.51.100.200", "203.0.113.10", 5000, 5060);
    await ins("192.0.2.50", "203.0.113.10", 5000, 5060);
    const flushed: Array<[string, number | null]> = [];
    const errors: string[] = [];
    const f = new ConntrackFlusher({
      netns: lab.ns("box"),
      onFlushed: (t, n) => flushed.push([t, n]),
      onError: (e) => errors.push(e.message),
    });
    f.flush(parseTarget("198.51.100.7"));
    // Queued twice while the first flush runs: runs once.
    f.flush(parseTarget("198.51.100.99"));
    f.flush(parseTarget("198.51.100.99"));
    await f.drain();
    f.flush(parseTarget("198.51.100.0/24"));
    await f.drain();
    assert.deepEqual(errors, []);
    assert.deepEqual(flushed, [
      ["198.51.100.7", 2],
      ["198.51.100.99", 0],
      ["198.51.100.0/24", 1],
    ]);
    // A burst: one listing first, then deletes only where flows exist.
    await ins("198.51.100.30", "203.0.113.10", 5000, 5060);
    await ins("203.0.113.10", "198.51.100.31", 6000, 7000);
    flushed.length = 0;
    for (let i = 20; i < 40; i++) f.flush(parseTarget(`198.51.100.${i}`));
    await f.drain();
    assert.equal(flushed.length, 20);
    assert.deepEqual(
      flushed.filter(([, n]) => n !== 0),
      [
        ["198.51.100.30", 1],
        ["198.51.100.31", 1],
      ],
    );
    assert.deepEqual(errors, []);
    const left = await lab.exec("box", ["conntrack", "-L"]);
    assert.match(left.stdout, /src=192\.0\.2\.50/, "other flows stay");
    assert.doesNotMatch(left.stdout, /198\.51\.100/);
  });
});
