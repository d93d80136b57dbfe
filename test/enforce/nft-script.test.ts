import assert from "node:assert/strict";
import { test } from "node:test";
import {
  elementCommand,
  elementText,
  formatTimeout,
  l4Match,
  MAX_TIMEOUT_MS,
  parseListing,
  remainingFor,
  rulesetCommands,
  setFor,
} from "../../src/enforce/nft-script.js";
import type { EnforceSettings } from "../../src/enforce/types.js";

const base: EnforceSettings = {
  action: "drop",
  ports: [],
  protocols: ["udp", "tcp"],
  batchWindow: 2,
  conntrackFlush: true,
  table: "sipwarden",
};

test("the default ruleset: four timeout sets and a raw-priority chain that drops every packet", () => {
  assert.deepEqual(rulesetCommands(base), [
    "add table inet sipwarden",
    "add set inet sipwarden addr4 { type ipv4_addr; flags timeout; }",
    "add set inet sipwarden addr6 { type ipv6_addr; flags timeout; }",
    "add set inet sipwarden net4 { type ipv4_addr; flags interval,timeout; }",
    "add set inet sipwarden net6 { type ipv6_addr; flags interval,timeout; }",
    "add chain inet sipwarden prerouting { type filter hook prerouting priority raw; policy accept; }",
    "flush chain inet sipwarden prerouting",
    "add rule inet sipwarden prerouting ip saddr @addr4 counter drop",
    "add rule inet sipwarden prerouting ip6 saddr @addr6 counter drop",
    "add rule inet sipwarden prerouting ip saddr @net4 counter drop",
    "add rule inet sipwarden prerouting ip6 saddr @net6 counter drop",
  ]);
});

test("limiting to SIP ports and protocols, and rejecting instead of dropping", () => {
  assert.equal(l4Match({ ports: [], protocols: ["udp", "tcp"] }), "");
  assert.equal(l4Match({ ports: [], protocols: [] }), "");
  assert.equal(l4Match({ ports: [], protocols: ["udp"] }), "meta l4proto udp ");
  assert.equal(
    l4Match({ ports: [5061, 5060, 5060], protocols: ["tcp", "udp"] }),
    "meta l4proto { udp, tcp } th dport { 5060, 5061 } ",
  );
  assert.equal(l4Match({ ports: [5060], protocols: ["udp"] }), "meta l4proto udp th dport 5060 ");
  assert.throws(() => l4Match({ ports: [70000], protocols: ["udp"] }), /bad port/);

  const rules = rulesetCommands({ ...base, action: "reject", ports: [5060] }).filter((c) => c.startsWith("add rule"));
  assert.equal(rules.length, 8);
  assert.equal(
    rules[0],
    "add rule inet sipwarden prerouting meta l4proto tcp th dport 5060 ip saddr @addr4 counter reject with tcp reset",
  );
  assert.equal(
    rules[1],
    "add rule inet sipwarden prerouting meta l4proto { udp, tcp } th dport 5060 ip saddr @addr4 counter reject",
  );
  const udpOnly = rulesetCommands({ ...base, action: "reject", protocols: ["udp"] }).filter((c) =>
    c.startsWith("add rule"),
  );
  assert.ok(
    udpOnly.every((r) => !r.includes("tcp reset")),
    "no TCP reset rule when TCP is not blocked",
  );
});

test("the table name is checked before it reaches nft", () => {
  assert.throws(() => rulesetCommands({ ...base, table: "x; flush ruleset" }), /bad table name/);
  assert.throws(() => rulesetCommands({ ...base, table: "Upper" }), /bad table name/);
});

test("timeouts are written with units (nft reads a bare ms count into 32 bits)", () => {
  assert.equal(formatTimeout(1500), "1s500ms");
  assert.equal(formatTimeout(3_600_000), "1h");
  assert.equal(formatTimeout(90 * 86_400_000 + 1), "90d1ms");
  assert.equal(formatTimeout(0.2), "1ms");
  assert.equal(formatTimeout(2 ** 32 + 5), "49d17h2m47s301ms");
  assert.equal(elementText("198.51.100.7", 3_600_000), "198.51.100.7 timeout 1h");
  assert.equal(elementText("2001:db8::/64", null), "2001:db8::/64");
  assert.equal(
    elementCommand("delete", "sipwarden", "addr4", ["a", "b"]),
    "delete element inet sipwarden addr4 { a, b }",
  );
});

test("remaining time: permanent stays permanent, beyond ten years becomes permanent", () => {
  assert.equal(remainingFor(null, 0), null);
  assert.equal(remainingFor(5000, 1000), 4000);
  assert.equal(remainingFor(MAX_TIMEOUT_MS + 2, 1), null);
});

test("targets go to the set of their family and kind", () => {
  assert.equal(setFor({ family: 4, net: false }), "addr4");
  assert.equal(setFor({ family: 6, net: false }), "addr6");
  assert.equal(setFor({ family: 4, net: true }), "net4");
  assert.equal(setFor({ family: 6, net: true }), "net6");
});

// Captured from `nft -j list table inet sipwarden` (nftables 1.0.6).
const LISTING = JSON.parse(
  '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "sipwarden", "handle": 3}}, {"set": {"family": "inet", "name": "addr4", "table": "sipwarden", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "elem": [{"elem": {"val": "198.51.100.7", "timeout": 3600, "expires": 3599}}, "198.51.100.8"]}}, {"set": {"family": "inet", "name": "net6", "table": "sipwarden", "type": "ipv6_addr", "handle": 2, "flags": ["interval", "timeout"], "elem": [{"range": ["2001:db8:1::1", "2001:db8:1::5"]}, {"elem": {"val": {"prefix": {"addr": "2001:db8:bad::", "len": 64}}, "timeout": 7200, "expires": 7199}}]}}, {"chain": {"family": "inet", "table": "sipwarden", "name": "prerouting", "handle": 3, "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}}, {"rule": {"family": "inet", "table": "sipwarden", "chain": "prerouting", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@addr4"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}]}',
);

test("the kernel's JSON listing is read into elements with absolute expiry", () => {
  const l = parseListing(LISTING, "sipwarden", 1_000_000);
  assert.equal(l.exists, true);
  assert.equal(l.rules, 1);
  assert.deepEqual([...l.sets], ["addr4", "net6"]);
  assert.deepEqual(l.elements, [
    { set: "addr4", text: "198.51.100.7", expiresAt: 1_000_000 + 3_599_000 },
    { set: "addr4", text: "198.51.100.8", expiresAt: null },
    { set: "net6", text: "2001:db8:1::1-2001:db8:1::5", expiresAt: null },
    { set: "net6", text: "2001:db8:bad::/64", expiresAt: 1_000_000 + 7_199_000 },
  ]);
  assert.equal(parseListing(LISTING, "other", 0).elements.length, 0, "another table's sets are not ours");
  assert.equal(parseListing({}, "sipwarden", 0).exists, false);
});
