/**
 * StatsD output against a real UDP socket on 127.0.0.1: the exact metric lines, how hot-shots
 * packs them into datagrams, the address form, and the `--statsd` flag.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import fc from "fast-check";
import { applyRunFlags, parseStatsdTarget } from "../../src/cli/run-command.js";
import { defaultConfig } from "../../src/config/load.js";
import { normalizeIp } from "../../src/core/address.js";
import { EVENT_KINDS } from "../../src/core/events.js";
import { FAILED_AUTH_KINDS, Metrics } from "../../src/metrics/metrics.js";
import { addressKey, MAX_SERVICES, StatsdMetrics, statsdAddress, statsdComponent } from "../../src/metrics/statsd.js";
import type { BanRow } from "../../src/store/types.js";
import { attack, hostile, record } from "./events.js";
import { UdpSink } from "./udp-sink.js";

function banRow(target: string, rule: string): BanRow {
  return { target, rule, reason: "test", source: "rule", since: 0, expiresAt: null, count: 5, detail: null };
}

describe("StatsD address form", () => {
  it("follows Asterisk's IPV4/UDP/a.b.c.d form with the port dropped and separators replaced", () => {
    assert.equal(statsdAddress({ address: "198.51.100.23", port: 5060, transport: "udp" }), "IPV4/UDP/198_51_100_23");
    assert.equal(statsdAddress({ address: "198.51.100.23", port: 5060, transport: "wss" }), "IPV4/WSS/198_51_100_23");
    // Unknown transport: left out, as Asterisk does for transport 0.
    assert.equal(statsdAddress({ address: "198.51.100.7", port: 5060 }), "IPV4/198_51_100_7");
    assert.equal(statsdAddress({ address: "2001:db8::77", port: 41922, transport: "tcp" }), "IPV6/TCP/2001_db8__77");
    assert.equal(statsdAddress({ address: "::1" }), "IPV6/__1");
  });

  it("is reversible: `_` back to `.` (IPV4) or `:` (IPV6) gives the address", () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
    const v6 = fc
      .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
      .map((g) => normalizeIp(g.map((x) => x.toString(16)).join(":")))
      .filter((s): s is string => s?.includes(":") === true);
    fc.assert(
      fc.property(fc.oneof(v4, v6), fc.constantFrom(undefined, "udp", "tcp", "tls"), (ip, t) => {
        const s = statsdAddress(t ? { address: ip, transport: t } : { address: ip });
        assert.ok(!/[.:|@\s]/.test(s), `no StatsD separator in ${s}`);
        const parts = s.split("/");
        const fam = parts[0];
        const addr = parts[parts.length - 1]!;
        assert.equal(parts.length, t ? 3 : 2);
        if (t) assert.equal(parts[1], t.toUpperCase());
        assert.equal(addr.replaceAll("_", fam === "IPV6" ? ":" : "."), ip);
      }),
      { numRuns: 500 },
    );
  });

  it("keys IPv4 addresses by their 32-bit value and everything else by the text", () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
    fc.assert(
      fc.property(v4, v4, (a, b) => {
        const ka = addressKey(a.join("."));
        assert.equal(typeof ka, "number");
        assert.equal((ka as number) >>> 0, ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0);
        assert.equal(ka === addressKey(b.join(".")), a.join(".") === b.join("."));
      }),
      { numRuns: 500 },
    );
    for (const s of ["2001:db8::1", "::1", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "256.1.1.1", "1.2.3.x"])
      assert.equal(addressKey(s), s, s);
  });

  it("sanitises services and rule names to StatsD-safe path components", () => {
    assert.equal(statsdComponent("PJSIP"), "PJSIP");
    assert.equal(statsdComponent("sofia"), "sofia");
    assert.equal(statsdComponent("my svc.v2:x|y"), "my_svc_v2_x_y");
    assert.equal(statsdComponent(""), "unknown");
    assert.equal(statsdComponent("sip-auth-bruteforce", true), "sip-auth-bruteforce");
    assert.equal(statsdComponent("sip-auth-bruteforce"), "sip_auth_bruteforce");
  });
});

describe("StatsD against a UDP listener", () => {
  let sink: UdpSink;
  const open: (Metrics | StatsdMetrics)[] = [];
  before(async () => {
    sink = await UdpSink.start();
  });
  beforeEach(() => sink.clear());
  after(async () => {
    for (const m of open) await m.close();
    await sink.close();
  });

  /** A Metrics with StatsD only, flushing only when told to (a 10-minute timer never fires in a test). */
  function statsdOnly(prefix = "security"): Metrics {
    const m = new Metrics({
      prometheus: false,
      statsd: { host: "127.0.0.1", port: sink.port, prefix },
      statsdFlushMs: 600_000,
    });
    open.push(m);
    return m;
  }

  it("sends exactly the failed_auth, events, bans and unbans lines", async () => {
    const m = statsdOnly();
    const ev = m.hooks.event!;
    assert.equal(m.hooks.record, undefined, "no per-record work when only StatsD is on");
    ev(attack("auth_failed", "198.51.100.23", { transport: "udp" }), record("file:/var/log/asterisk/full"));
    await m.flush();
    const first = await sink.until("the first flush", (l) => l.length >= 3);
    assert.deepEqual(first.sort(), [
      "security.events.auth_failed:1|c",
      "security.failed_auth.PJSIP.IPV4/UDP/198_51_100_23:1|c",
      "security.failed_auth.PJSIP.count:1|c",
    ]);
    sink.clear();

    const r = record("file:/var/log/asterisk/full");
    for (let i = 0; i < 3; i++) ev(attack("auth_failed", "198.51.100.23", { transport: "udp" }), r);
    ev(attack("auth_failed", "198.51.100.23"), r); // same address, transport unknown: its own name
    ev(attack("unknown_account", "2001:db8::77", { service: "AMI", transport: "tcp" }), r);
    ev(attack("scanner", "198.51.100.9", { transport: "udp" }), r); // not a failed authentication
    ev(attack("auth_ok", "192.0.2.10", { transport: "udp" }), r);
    ev(hostile(), r);
    ev(attack("auth_failed", "198.51.100.50", { service: "my svc.v2", server: "custom" }), r);
    m.banListener.banned!(banRow("198.51.100.23", "sip-auth-bruteforce"), 12, undefined);
    m.banListener.unbanned!("198.51.100.23", "expiry");
    m.banListener.unbanned!("198.51.100.99", "api"); // never seen banned: rule unknown
    await m.flush();
    const lines = await sink.until("the second flush", (l) => l.length >= 15);
    assert.deepEqual(lines.sort(), [
      "security.bans.sip-auth-bruteforce:1|c",
      "security.events.auth_failed:5|c",
      "security.events.auth_ok:1|c",
      "security.events.hostile:1|c",
      "security.events.scanner:1|c",
      "security.events.unknown_account:1|c",
      "security.failed_auth.AMI.IPV6/TCP/2001_db8__77:1|c",
      "security.failed_auth.AMI.count:1|c",
      "security.failed_auth.PJSIP.IPV4/198_51_100_23:1|c",
      "security.failed_auth.PJSIP.IPV4/UDP/198_51_100_23:3|c",
      "security.failed_auth.PJSIP.count:4|c",
      "security.failed_auth.my_svc_v2.IPV4/198_51_100_50:1|c",
      "security.failed_auth.my_svc_v2.count:1|c",
      "security.unbans.sip-auth-bruteforce:1|c",
      "security.unbans.unknown:1|c",
    ]);
    sink.clear();
    // Nothing new: a flush sends nothing.
    await m.flush();
    ev(attack("auth_failed", "198.51.100.1", { transport: "udp" }), r);
    await m.flush();
    await sink.until("the marker flush", (l) => l.length >= 3);
    assert.deepEqual(sink.lines().sort(), [
      "security.events.auth_failed:1|c",
      "security.failed_auth.PJSIP.IPV4/UDP/198_51_100_1:1|c",
      "security.failed_auth.PJSIP.count:1|c",
    ]);
  });

  it("counts failed_auth for exactly the FAILED_AUTH_KINDS (auth_failed, unknown_account)", async () => {
    assert.deepEqual([...FAILED_AUTH_KINDS].sort(), ["auth_failed", "unknown_account"]);
    const m = statsdOnly();
    for (const [i, kind] of EVENT_KINDS.entries())
      m.hooks.event!(kind === "hostile" ? hostile() : attack(kind, `198.51.100.${i + 1}`), record("s"));
    await m.flush();
    await sink.until(
      "one line per kind",
      (l) => l.filter((x) => x.startsWith("security.events.")).length === EVENT_KINDS.length,
    );
    await sink.until("the failed_auth lines", (l) => l.filter((x) => x.includes(".failed_auth.")).length >= 3);
    const failed = sink
      .lines()
      .filter((l) => l.startsWith("security.failed_auth.PJSIP.IPV4/"))
      .map((l) => EVENT_KINDS[Number(/_(\d+):/.exec(l)![1]) - 1])
      .sort();
    assert.deepEqual(failed, [...FAILED_AUTH_KINDS].sort());
    assert.ok(sink.lines().includes(`security.failed_auth.PJSIP.count:${FAILED_AUTH_KINDS.size}|c`));
  });

  it("packs many lines into datagrams of at most 1432 bytes, losing none", async () => {
    const m = statsdOnly();
    const r = record("file:x");
    for (let i = 1; i <= 200; i++)
      for (let k = 0; k < (i % 3) + 1; k++)
        m.hooks.event!(attack("auth_failed", `198.51.100.${i}`, { transport: "udp" }), r);
    await m.flush();
    const counts = await sink.until("all 200 addresses", (l) => l.length >= 202).then(() => sink.counts());
    assert.ok(sink.packets.length > 1, "more than one datagram");
    for (const p of sink.packets) assert.ok(Buffer.byteLength(p) <= 1432, `datagram of ${Buffer.byteLength(p)} bytes`);
    for (const p of sink.packets) assert.ok(!p.endsWith("\n") && !p.startsWith("\n"), "lines joined by \\n only");
    let total = 0;
    for (let i = 1; i <= 200; i++) {
      assert.equal(counts.get(`security.failed_auth.PJSIP.IPV4/UDP/198_51_100_${i}`), (i % 3) + 1);
      total += (i % 3) + 1;
    }
    assert.equal(counts.get("security.failed_auth.PJSIP.count"), total);
    assert.equal(counts.get("security.events.auth_failed"), total);
    assert.equal(sink.lines().length, 202);
  });

  it("flushes on its own timer, and close() sends what is pending", async () => {
    const timed = new StatsdMetrics({ host: "127.0.0.1", port: sink.port, prefix: "pbx1.sec", flushMs: 50 });
    open.push(timed);
    timed.failedAuth("SIP", { address: "198.51.100.4", port: 5060, transport: "udp" });
    await sink.until("the timer flush", (l) => l.includes("pbx1.sec.failed_auth.SIP.IPV4/UDP/198_51_100_4:1|c"));
    sink.clear();
    const m = statsdOnly("");
    m.hooks.event!(attack("auth_failed", "198.51.100.5", { transport: "tls" }), record("s"));
    await m.close();
    await m.close(); // idempotent
    await sink.until("the lines sent by close", (l) => l.length >= 3);
    assert.deepEqual(sink.lines().sort(), [
      "events.auth_failed:1|c",
      "failed_auth.PJSIP.IPV4/TLS/198_51_100_5:1|c",
      "failed_auth.PJSIP.count:1|c",
    ]);
  });

  it("bounds the service names: past the limit they share failed_auth.other", async () => {
    const m = statsdOnly();
    const r = record("s");
    for (let i = 0; i < MAX_SERVICES + 5; i++)
      m.hooks.event!(attack("auth_failed", "198.51.100.1", { service: `s${i}` }), r);
    await m.flush();
    await sink.until(
      "the other lines",
      (l) =>
        l.includes("security.failed_auth.other.count:5|c") &&
        l.includes("security.failed_auth.other.IPV4/198_51_100_1:5|c"),
    );
    const counts = sink.counts();
    assert.equal(counts.get("security.failed_auth.s0.count"), 1);
    assert.equal(counts.get(`security.failed_auth.s${MAX_SERVICES - 1}.count`), 1);
    assert.equal(counts.get(`security.failed_auth.s${MAX_SERVICES}.count`), undefined);
    assert.equal(counts.get("security.failed_auth.other.IPV4/198_51_100_1"), 5);
  });

  it("sanitises a configured prefix component by component", async () => {
    const m = statsdOnly("voip.pbx-1:x.");
    m.hooks.event!(attack("flood", "198.51.100.6"), record("s"));
    await m.flush();
    await sink.until("the flood line", (l) => l.length >= 1);
    assert.deepEqual(sink.lines(), ["voip.pbx-1_x.events.flood:1|c"]);
  });
});

describe("StatsD settings", () => {
  it("refuses a port or host that hot-shots would silently replace", () => {
    for (const port of [0, 65536, -1, 1.5])
      assert.throws(() => new Metrics({ prometheus: false, statsd: { host: "127.0.0.1", port, prefix: "s" } }), {
        code: "CONFIG_INVALID",
        path: "metrics.statsd.port",
      });
    assert.throws(() => new Metrics({ prometheus: false, statsd: { host: " ", port: 8125, prefix: "s" } }), {
      code: "CONFIG_INVALID",
      path: "metrics.statsd.host",
    });
  });
});

describe("sipwarden run --statsd", () => {
  it("parses host:port, [v6]:port and host names", () => {
    assert.deepEqual(parseStatsdTarget("127.0.0.1:8125"), { host: "127.0.0.1", port: 8125 });
    assert.deepEqual(parseStatsdTarget("[::1]:9125"), { host: "::1", port: 9125 });
    assert.deepEqual(parseStatsdTarget("statsd.example.net:8125"), { host: "statsd.example.net", port: 8125 });
    assert.deepEqual(parseStatsdTarget("localhost:8125"), { host: "localhost", port: 8125 });
    for (const bad of [
      "127.0.0.1",
      "127.0.0.1:0",
      "127.0.0.1:70000",
      "::1:8125",
      "host name:1",
      ":8125",
      "h:x",
      "-bad:1",
    ])
      assert.throws(() => parseStatsdTarget(bad), { code: "USAGE" }, bad);
  });

  it("sets metrics.statsd, keeping a configured prefix", () => {
    const base = defaultConfig();
    const c = applyRunFlags(base, { config: "x", format: "auto", statsd: "127.0.0.1:8126" });
    assert.deepEqual(c.metrics.statsd, { host: "127.0.0.1", port: 8126, prefix: "security" });
    assert.equal(base.metrics.statsd, undefined, "the loaded config is not modified");
    const withPrefix = structuredClone(base);
    withPrefix.metrics.statsd = { host: "192.0.2.1", port: 8125, prefix: "pbx1" };
    const d = applyRunFlags(withPrefix, { config: "x", format: "auto", statsd: "[::1]:8125" });
    assert.deepEqual(d.metrics.statsd, { host: "::1", port: 8125, prefix: "pbx1" });
  });
});
