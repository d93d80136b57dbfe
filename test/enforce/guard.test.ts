import assert from "node:assert/strict";
import { test } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { AddressGuard, parseTarget } from "../../src/enforce/guard.js";

const refused = (fn: () => unknown, why: RegExp) =>
  assert.throws(fn, (e: unknown) => isSipwardenError(e, "ADDRESS_REFUSED") && why.test((e as Error).message));
const invalid = (fn: () => unknown) => assert.throws(fn, (e: unknown) => isSipwardenError(e, "ADDRESS_INVALID"));

test("targets are parsed and normalised before anything else sees them", () => {
  assert.deepEqual(parseTarget("198.51.100.7"), {
    text: "198.51.100.7",
    family: 4,
    net: false,
    ip: "198.51.100.7",
    prefix: 32,
  });
  assert.equal(parseTarget("[2001:DB8:0:0::7]").text, "2001:db8::7");
  assert.equal(parseTarget("::ffff:198.51.100.7").text, "198.51.100.7", "mapped IPv6 folds to IPv4");
  assert.deepEqual(parseTarget("2001:db8:bad::7/64"), {
    text: "2001:db8:bad::/64",
    family: 6,
    net: true,
    ip: "2001:db8:bad::",
    prefix: 64,
  });
  assert.equal(parseTarget("198.51.100.77/24").text, "198.51.100.0/24");
  assert.equal(parseTarget("198.51.100.7/32").net, false);
});

test("anything that is not an IP literal is invalid, so it can never reach a command", () => {
  for (const bad of [
    "1.2.3.400",
    "example.com",
    "198.51.100.7; rm -rf /",
    "1.2.3.4/33",
    "",
    "1.2.3.4 }",
    "::1/129",
    "01.2.3.4",
  ])
    invalid(() => new AddressGuard().check(bad));
  invalid(() => new AddressGuard().check(42 as unknown as string));
});

test("loopback and the unspecified address are refused", () => {
  const g = new AddressGuard();
  refused(() => g.check("127.0.0.1"), /loopback/);
  refused(() => g.check("127.5.5.5"), /loopback/);
  refused(() => g.check("::1"), /loopback/);
  refused(() => g.check("0.0.0.0"), /loopback|unspecified/);
  refused(() => g.check("::"), /loopback|unspecified/);
  refused(() => g.check("::ffff:127.0.0.1"), /loopback/);
  refused(() => g.check("127.0.0.0/16"), /loopback/);
});

test("networks wider than /8 (IPv4) or /32 (IPv6) are refused as typing mistakes", () => {
  const g = new AddressGuard();
  refused(() => g.check("128.0.0.0/1"), /wider/);
  refused(() => g.check("2000::/16"), /wider/);
  assert.equal(g.check("198.0.0.0/8").text, "198.0.0.0/8");
  assert.equal(g.check("2001:db8::/32").text, "2001:db8::/32");
});

test("the host's own addresses are refused, also inside a network ban", () => {
  let addrs = ["203.0.113.10/24", "2001:db8:203::10", "fe80::1"];
  const g = new AddressGuard({ hostAddresses: () => addrs });
  refused(() => g.check("203.0.113.10"), /own addresses/);
  refused(() => g.check("203.0.113.0/24"), /own addresses/);
  refused(() => g.check("2001:db8:203::/64"), /own addresses/);
  // The on-link neighbours are not ours: only the address itself is protected.
  assert.equal(g.check("203.0.113.11").text, "203.0.113.11");
  // A new address counts as soon as the provider returns it.
  addrs = [...addrs, "203.0.113.11"];
  refused(() => g.check("203.0.113.11"), /own addresses/);
});

test("allowlisted networks are refused, whichever side is wider", () => {
  const g = new AddressGuard({ allowlist: ["192.0.2.0/24", "2001:db8:192::/48"] });
  refused(() => g.check("192.0.2.50"), /allowlist/);
  refused(() => g.check("192.0.0.0/16"), /allowlist/);
  refused(() => g.check("2001:db8:192:5::/64"), /allowlist/);
  assert.equal(g.check("198.51.100.7").text, "198.51.100.7");
});
