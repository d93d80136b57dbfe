import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CidrList, normalizeCidr, normalizeIp, splitHostPort } from "../../src/core/address.js";

describe("normalizeIp", () => {
  it("accepts IPv4 and IPv6 literals and normalises them", () => {
    assert.equal(normalizeIp("198.51.100.7"), "198.51.100.7");
    assert.equal(normalizeIp("2001:DB8:0:0::66"), "2001:db8::66");
    assert.equal(normalizeIp("[2001:db8::66]"), "2001:db8::66");
    assert.equal(normalizeIp("::ffff:192.0.2.50"), "192.0.2.50");
  });
  it("rejects names, garbage and out-of-range octets, also on a second (cached) call", () => {
    for (const bad of ["pbx.example.org", "256.1.1.1", "1.2.3", "01.2.3.4", "2001:db8::zz", "", ":", "1.2.3.4:5060"]) {
      assert.equal(normalizeIp(bad), null, bad);
      assert.equal(normalizeIp(bad), null, bad);
    }
  });
});

describe("splitHostPort", () => {
  it("splits ip:port and [v6]:port, and refuses the ambiguous bare v6 form", () => {
    assert.deepEqual(splitHostPort("198.51.100.7:5060"), { ip: "198.51.100.7", port: 5060 });
    assert.deepEqual(splitHostPort("[2001:db8::66]:5061"), { ip: "2001:db8::66", port: 5061 });
    assert.equal(splitHostPort("2001:db8::66:5060"), null);
    assert.equal(splitHostPort("198.51.100.7:70000"), null);
    assert.equal(splitHostPort("host:5060"), null);
  });
});

describe("normalizeCidr and CidrList", () => {
  it("normalises networks to their base address", () => {
    assert.equal(normalizeCidr("198.51.100.77/24")?.text, "198.51.100.0/24");
    assert.equal(normalizeCidr("2001:db8:1:2:3::1/64")?.text, "2001:db8:1:2::/64");
    assert.equal(normalizeCidr("192.0.2.1/32")?.text, "192.0.2.1");
    assert.equal(normalizeCidr("192.0.2.1/33"), null);
  });
  it("matches addresses and contained networks", () => {
    const l = new CidrList(["192.0.2.0/24", "2001:db8:1::/48"]);
    assert.ok(l.contains("192.0.2.50"));
    assert.ok(l.contains("192.0.2.128/25"));
    assert.ok(!l.contains("198.51.100.1"));
    assert.ok(l.contains("2001:db8:1:5::9"));
    assert.ok(!l.contains("2001:db8:2::1"));
    assert.throws(() => l.add("bogus"), RangeError);
  });
});
