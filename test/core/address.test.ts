import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import { CidrList, normalizeCidr, normalizeIp, normalizeIpAt, splitHostPort, V4 } from "../../src/core/address.js";

describe("normalizeIp", () => {
  it("accepts IPv4 and IPv6 literals and normalises them", () => {
    assert.equal(normalizeIp("198.51.100.7"), "198.51.100.7");
    assert.equal(normalizeIp("2001:DB8:0:0::66"), "2001:db8::66");
    assert.equal(normalizeIp("[2001:db8::66]"), "2001:db8::66");
    assert.equal(normalizeIp("::ffff:192.0.2.50"), "192.0.2.50");
    assert.equal(normalizeIp("::FFFF:0:0"), "0.0.0.0");
  });
  it("keeps the deprecated IPv4-compatible ::a.b.c.d as IPv6 (another host than a.b.c.d)", () => {
    // glibc's inet_ntop prints ::102:304 this way; banning 1.2.3.4 for it would hit the wrong host.
    assert.equal(normalizeIp("::1.2.3.4"), "::102:304");
    assert.equal(normalizeIp("::0.0.0.1"), "::1");
    assert.equal(normalizeIp("2001:db8::1.2.3.4"), "2001:db8::102:304");
    assert.equal(normalizeIp("::ffff:1.2.3.04"), null);
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
  it("answers again after the list changes (memoised answers are dropped), and past the memo's size", () => {
    const l = new CidrList(["192.0.2.0/24"]);
    assert.ok(!l.contains("198.51.100.1"));
    l.add("198.51.100.0/24");
    assert.ok(l.contains("198.51.100.1"));
    for (let i = 0; i < 5000; i++) assert.equal(l.contains(`10.0.${i >> 8}.${i & 255}`), false);
    assert.ok(l.contains("198.51.100.1") && l.contains("192.0.2.9") && !l.contains("203.0.113.1"));
  });
});

describe("normalizeIpAt (hand-written IPv4 check, interning)", () => {
  const octet = fc.oneof(
    fc.integer({ min: 0, max: 300 }).map(String),
    fc.constantFrom("00", "01", "010", "256", "", "1a", "-1", " 1", "0x1"),
  );
  const quadish = fc
    .tuple(fc.array(octet, { minLength: 1, maxLength: 6 }), fc.constantFrom(".", "..", ":"))
    .map(([parts, sep]) => parts.join(sep === "." ? "." : sep));
  it("accepts exactly the strict dotted quads the V4 pattern accepts", () => {
    fc.assert(
      fc.property(fc.oneof(quadish, fc.string({ maxLength: 20 })), (s) => {
        const got = normalizeIpAt(s, 0, s.length);
        if (V4.test(s)) assert.equal(got, s);
        else if (got !== null) assert.ok(got.includes(":") || !s.includes("."), `${s} -> ${got}`);
      }),
      { numRuns: 3000 },
    );
  });
  it("reads an address inside a line, brackets stripped, and hands out one string per address", () => {
    const line = "failed for '198.51.100.7:5060' and [203.0.113.9]";
    const a = line.indexOf("198");
    assert.equal(normalizeIpAt(line, a, a + 12), "198.51.100.7");
    assert.equal(normalizeIpAt(line, a, a + 12), normalizeIpAt(`x${line}`, a + 1, a + 13));
    const b = line.indexOf("[");
    assert.equal(normalizeIpAt(line, b, b + 13), "203.0.113.9");
    assert.equal(normalizeIpAt(line, a, a + 17), null);
    assert.equal(normalizeIpAt("x 2001:DB8::1 y", 2, 13), "2001:db8::1");
    assert.equal(normalizeIpAt("[::ffff:198.51.100.7]", 0, 21), "198.51.100.7");
    assert.equal(normalizeIpAt("01.2.3.4", 0, 8), null);
    assert.equal(normalizeIpAt("1.2.3.4.5", 0, 9), null);
    assert.equal(normalizeIpAt("255.255.255.255", 0, 15), "255.255.255.255");
    assert.equal(normalizeIpAt("0.0.0.0", 0, 7), "0.0.0.0");
  });
  it("IPv6 read in place (memoised by text) equals ipaddr.js on the sliced text, across cache refills", () => {
    const reference = (t: string): string | null => {
      if (V4.test(t)) return t;
      if (!/^[0-9A-Fa-f:.]+$/.test(t) || !t.includes(":") || !ipaddr.IPv6.isValid(t)) return null;
      // ipaddr.js reads the deprecated IPv4-compatible form ::a.b.c.d as IPv4-mapped; RFC 4291
      // (and the kernel) read it as the IPv6 address ::a.b.c.d, another host: see below.
      const a = ipaddr.IPv6.parse(/^::\d+(\.\d+){3}$/.test(t) ? `::0:${t.slice(2)}` : t);
      return a.isIPv4MappedAddress() ? a.toIPv4Address().toString() : a.toString();
    };
    const v6ish = fc.oneof(
      fc.ipV6(),
      fc.ipV6().map((s) => s.toUpperCase()),
      fc.ipV4().map((s) => `::ffff:${s}`),
      fc.stringMatching(/^[0-9a-fA-F:.]{2,20}$/),
    );
    // 6000 runs: more distinct literals than the cache holds, each looked up twice.
    fc.assert(
      fc.property(v6ish, fc.string({ maxLength: 4 }), (addr, pad) => {
        const line = `${pad}'${addr}'${pad}`;
        const from = pad.length + 1;
        const want = reference(addr);
        assert.equal(normalizeIpAt(line, from, from + addr.length), want, addr);
        assert.equal(normalizeIpAt(`#${line}`, from + 1, from + 1 + addr.length), want, addr);
      }),
      { numRuns: 6000 },
    );
  });
  it("IPv6 literals that differ only in the middle (same cache key) each get their own answer", () => {
    // The cache key reads the length and the first 4 and last 8 characters: these share all of them.
    const a = "2001:0db8:0001:0000:0000:0000:0000:0001";
    const b = "2001:0db8:0002:0000:0000:0000:0000:0001";
    const bad = "2001:0db8:00g2:0000:0000:0000:0000:0001";
    for (let i = 0; i < 3; i++) {
      assert.equal(normalizeIpAt(`'${a}'`, 1, 1 + a.length), "2001:db8:1::1");
      assert.equal(normalizeIpAt(`'${b}'`, 1, 1 + b.length), "2001:db8:2::1");
      assert.equal(normalizeIpAt(`'${bad}'`, 1, 1 + bad.length), null);
    }
  });
});
