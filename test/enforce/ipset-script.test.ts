import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addLine,
  chainRestore,
  createLines,
  delLine,
  hookFor,
  IPSET_MAX_TIMEOUT_S,
  ipsetNames,
  ipsetTimeout,
  kindFor,
  parseIpsetSave,
} from "../../src/enforce/ipset-script.js";
import type { EnforceSettings } from "../../src/enforce/types.js";

const base: EnforceSettings = {
  action: "drop",
  ports: [],
  protocols: ["udp", "tcp"],
  batchWindow: 2,
  conntrackFlush: true,
  table: "sipwarden",
};
const names = ipsetNames("sipwarden");

test("set names fit ipset's 31 characters and bad stems are refused", () => {
  assert.deepEqual(names.sets, {
    addr4: "sipwarden-addr4",
    addr6: "sipwarden-addr6",
    net4: "sipwarden-net4",
    net6: "sipwarden-net6",
  });
  const long = ipsetNames("a".repeat(31));
  assert.ok(Object.values(long.sets).every((n) => n.length <= 31));
  assert.throws(() => ipsetNames("bad name"), /bad table name/);
  assert.equal(kindFor({ family: 6, net: true }), "net6");
});

test("sets are created with timeouts, per family, large enough for an attack", () => {
  assert.deepEqual(createLines(names), [
    "create sipwarden-addr4 hash:ip family inet timeout 0 maxelem 1048576",
    "create sipwarden-addr6 hash:ip family inet6 timeout 0 maxelem 1048576",
    "create sipwarden-net4 hash:net family inet timeout 0 maxelem 1048576",
    "create sipwarden-net6 hash:net family inet6 timeout 0 maxelem 1048576",
  ]);
});

test("timeouts are whole seconds, 0 is permanent, and long bans are capped", () => {
  assert.equal(ipsetTimeout(null), 0);
  assert.equal(ipsetTimeout(1500), 2);
  assert.equal(ipsetTimeout(1), 1);
  assert.equal(ipsetTimeout(400 * 86_400_000), IPSET_MAX_TIMEOUT_S);
  assert.equal(addLine("s", "198.51.100.7", 3_600_000), "add s 198.51.100.7 timeout 3600");
  assert.equal(delLine("s", "2001:db8::/64"), "del s 2001:db8::/64");
});

test("drop goes in raw PREROUTING, matching every packet of a banned address", () => {
  assert.deepEqual(hookFor("drop"), { table: "raw", chain: "PREROUTING" });
  assert.equal(
    chainRestore(names, base, 4),
    [
      "*raw",
      ":sipwarden - [0:0]",
      "-A sipwarden -m set --match-set sipwarden-addr4 src -j DROP",
      "-A sipwarden -m set --match-set sipwarden-net4 src -j DROP",
      "COMMIT",
      "",
    ].join("\n"),
  );
});

test("ports and protocols narrow the rules; reject moves to filter INPUT", () => {
  const v6 = chainRestore(names, { ...base, ports: [5061, 5060], protocols: ["udp"] }, 6);
  assert.match(
    v6,
    /^-A sipwarden -p udp -m multiport --dports 5060,5061 -m set --match-set sipwarden-addr6 src -j DROP$/m,
  );
  assert.doesNotMatch(v6, /-p tcp/);
  const rej = chainRestore(names, { ...base, action: "reject" }, 4);
  assert.match(rej, /^\*filter$/m);
  assert.match(rej, /-p tcp -m set --match-set sipwarden-addr4 src -j REJECT --reject-with tcp-reset/);
  assert.match(rej, /--match-set sipwarden-addr4 src -j REJECT --reject-with icmp-port-unreachable/);
  assert.match(chainRestore(names, { ...base, action: "reject" }, 6), /icmp6-port-unreachable/);
  assert.deepEqual(hookFor("reject"), { table: "filter", chain: "INPUT" });
});

test("`ipset save` output is read back, ignoring other sets", () => {
  const out = [
    "create sipwarden-addr4 hash:ip family inet hashsize 1024 maxelem 1048576 timeout 0 bucketsize 12 initval 0x1",
    "add sipwarden-addr4 198.51.100.7 timeout 3599",
    "add sipwarden-addr4 198.51.100.8 timeout 0",
    "add sipwarden-net6 2001:db8:bad::/64 timeout 7199",
    "add sipwarden-net4 10.0.0.7 timeout 4",
    "add someone-else 192.0.2.1 timeout 5",
    "add sipwarden-addr4 not-an-ip timeout 5",
  ].join("\n");
  assert.deepEqual(parseIpsetSave(out, names), [
    { kind: "addr4", text: "198.51.100.7", timeout: 3599 },
    { kind: "addr4", text: "198.51.100.8", timeout: 0 },
    { kind: "net6", text: "2001:db8:bad::/64", timeout: 7199 },
    { kind: "net4", text: "10.0.0.7", timeout: 4 },
  ]);
});
