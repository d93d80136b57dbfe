import assert from "node:assert/strict";
import { test } from "node:test";
import { ConntrackFlusher, conntrackArgs, flowAddresses, parseDeleted } from "../../src/enforce/conntrack.js";
import { parseTarget } from "../../src/enforce/guard.js";

test("both directions are flushed: flows the address opened and flows opened towards it", () => {
  assert.deepEqual(conntrackArgs(parseTarget("198.51.100.7")), [
    ["conntrack", "-D", "--orig-src", "198.51.100.7"],
    ["conntrack", "-D", "--orig-dst", "198.51.100.7"],
  ]);
  assert.deepEqual(conntrackArgs(parseTarget("2001:db8::7")), [
    ["conntrack", "-D", "-f", "ipv6", "--orig-src", "2001:db8::7"],
    ["conntrack", "-D", "-f", "ipv6", "--orig-dst", "2001:db8::7"],
  ]);
});

test("networks are flushed with a mask", () => {
  assert.deepEqual(conntrackArgs(parseTarget("198.51.100.0/24"))[0], [
    "conntrack",
    "-D",
    "--orig-src",
    "198.51.100.0",
    "--mask-src",
    "255.255.255.0",
  ]);
  assert.deepEqual(conntrackArgs(parseTarget("2001:db8:bad::/64"))[1], [
    "conntrack",
    "-D",
    "-f",
    "ipv6",
    "--orig-dst",
    "2001:db8:bad::",
    "--mask-dst",
    "ffff:ffff:ffff:ffff::",
  ]);
});

test("the deleted count is read from conntrack's summary line", () => {
  assert.equal(parseDeleted("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n"), 3);
  assert.equal(parseDeleted("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"), 0);
  assert.equal(parseDeleted("garbage"), 0);
});

test("a listing yields each flow's original source and destination", () => {
  const listing = [
    "udp      17 29 src=198.51.100.1 dst=203.0.113.10 sport=4000 dport=5060 [UNREPLIED] src=203.0.113.10 dst=198.51.100.1 sport=5060 dport=4000 mark=0 use=1",
    "tcp      6 431999 ESTABLISHED src=2001:db8::7 dst=2001:db8::10 sport=1 dport=2 src=2001:db8::10 dst=2001:db8::7 sport=2 dport=1 [ASSURED] mark=0 use=1",
    "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.",
  ].join("\n");
  assert.deepEqual(flowAddresses(listing), ["198.51.100.1", "203.0.113.10", "2001:db8::7", "2001:db8::10"]);
});

test("a failing flush is reported with the command's stderr and does not stop the queue", async () => {
  const errors: string[] = [];
  const flushed: Array<[string, number | null]> = [];
  // A namespace that does not exist makes every run fail, root or not.
  const f = new ConntrackFlusher({
    netns: "sipwarden-no-such-netns",
    onError: (e) => errors.push(`${e.code}: ${e.message}`),
    onFlushed: (t, n) => flushed.push([t, n]),
  });
  f.flush(parseTarget("198.51.100.7"));
  f.flush(parseTarget("198.51.100.8"));
  await f.drain();
  assert.deepEqual(flushed, [
    ["198.51.100.7", null],
    ["198.51.100.8", null],
  ]);
  assert.equal(errors.length, 2);
  assert.match(
    errors[0]!,
    /^ENFORCER_FAILED: conntrack flush for 198\.51\.100\.7 failed \(exit \d+\): .*sipwarden-no-such-netns/,
  );
});
