import assert from "node:assert/strict";
import { test } from "node:test";
import { hostAddresses as localAddresses } from "../../src/core/host-addresses.js";
import { HostAddresses, parseIpAddrJson } from "../../src/enforce/host-addresses.js";

test("our own interface addresses include loopback, normalised", () => {
  const a = localAddresses();
  assert.ok(a.includes("127.0.0.1"));
  assert.ok(a.every((x) => !x.includes("%") && !x.startsWith("::ffff:")));
});

test("`ip -j addr show` output is read into addresses", () => {
  const json = JSON.stringify([
    {
      ifname: "lo",
      addr_info: [
        { family: "inet", local: "127.0.0.1" },
        { family: "inet6", local: "::1" },
      ],
    },
    {
      ifname: "eth0",
      addr_info: [
        { family: "inet", local: "203.0.113.10" },
        { family: "inet6", local: "2001:DB8:203::10" },
      ],
    },
    { ifname: "dummy", addr_info: [] },
  ]);
  assert.deepEqual(parseIpAddrJson(json), ["127.0.0.1", "::1", "203.0.113.10", "2001:db8:203::10"]);
});

test("the cached copy is refreshed when stale, and keeps its identity while unchanged", async () => {
  const clock = { now: 0 };
  const h = new HostAddresses({ refreshMs: 1000, now: () => clock.now });
  await h.refresh();
  const first = h.get();
  assert.ok(first.includes("127.0.0.1"));
  assert.equal(h.get(), first);
  clock.now = 5000;
  assert.equal(h.get(), first, "same addresses: same array, so the guard keeps its compiled list");
});
