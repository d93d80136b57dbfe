/**
 * The AMI source when things go wrong: refused, dead, hung and foreign servers, a manager user
 * without `read = security`, and a 100,000 events/s stream. Assertions are on counts and
 * states, never on how fast something happened.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { amiParser } from "../../src/parsers/ami.js";
import { AmiSource, backoffDelay } from "../../src/sources/ami.js";
import { CTX, capture, cleanups, config, FAST, SAMPLE, start } from "../helpers/ami-harness.js";
import { FakeAmiServer, frame, waitFor } from "../helpers/ami-server.js";

describe("AmiSource: failures and back-off", () => {
  it("connection refused: AMI_CONNECT named plainly, retried with back-off and counted", async () => {
    // A port that was free a moment ago: listen on an ephemeral port, then close it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { logger, logs } = capture();
    const source = new AmiSource(config(port), { ...FAST, logger });
    const ac = new AbortController();
    const done = source.run(() => {}, ac.signal);
    cleanups.push(async () => {
      ac.abort();
      await done;
    });
    await waitFor(() => source.stats().reconnects >= 3, "3 reconnects");
    const st = source.stats();
    assert.equal(st.lastError?.code, "AMI_CONNECT");
    assert.equal(
      st.lastError?.message,
      `connection refused by 127.0.0.1:${port}: is manager.conf enabled=yes and bindaddr set?`,
    );
    assert.equal(st.connected, false);
    assert.equal(st.logins, 0);
    assert.ok(st.disconnectedMs > 0);
    // The same failure is logged once, not once per retry.
    assert.equal(logs.filter((l) => l.level === "warn").length, 1);
    ac.abort();
    await done;
    assert.equal(source.stats().state, "stopped");
  });

  it("a dead server (TCP accepted, no banner): banner timeout, reconnect with growing back-off", async () => {
    const h = await start({ mode: "dead" }, {}, { bannerTimeout: 150, backoff: { initial: 20, max: 80, jitter: 0 } });
    await waitFor(() => h.server.connections >= 3, "3 connections", 15_000);
    const st = h.source.stats();
    assert.equal(st.lastError?.code, "AMI_PROTOCOL");
    assert.match(st.lastError!.message, /accepted the connection but sent no AMI banner within 150 ms/);
    assert.ok(st.reconnects >= 2);
    assert.equal(st.logins, 0);
    assert.ok(st.disconnectedMs >= 300, `disconnectedMs ${st.disconnectedMs}`);
  });

  it("a server that is not Asterisk is named as such", async () => {
    const other = createServer((s) => s.end("SSH-2.0-OpenSSH_9.2\r\n"));
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const port = (other.address() as { port: number }).port;
    const source = new AmiSource(config(port), FAST);
    const ac = new AbortController();
    const done = source.run(() => {}, ac.signal);
    cleanups.push(async () => {
      ac.abort();
      await done;
      await new Promise<void>((r) => other.close(() => r()));
    });
    await waitFor(() => source.stats().lastError !== null, "an error");
    assert.equal(source.stats().lastError?.code, "AMI_PROTOCOL");
    assert.match(source.stats().lastError!.message, /is not an Asterisk manager port: it greeted with "SSH-2\.0/);
  });

  it("keeps the connection alive with Ping, and drops it when Asterisk stops answering", async () => {
    const h = await start({}, { pingInterval: 30 });
    await waitFor(() => (h.server.sessions[0]?.actions.filter((a) => a.action === "Ping").length ?? 0) >= 3, "3 pings");
    assert.equal(h.source.stats().reconnects, 0);

    const hung = await start({ ignoreActions: ["ping"] }, { pingInterval: 30 }, { responseTimeout: 150 });
    await waitFor(() => hung.source.stats().reconnects >= 1, "a reconnect after the unanswered ping");
    assert.match(hung.source.stats().lastError!.message, /did not answer a keepalive Ping within 150 ms/);
    await waitFor(() => hung.server.logins >= 2, "a second login");
  });

  it("stops promptly while waiting to retry", async () => {
    const h = await start({ mode: "dead" }, {}, { bannerTimeout: 50, backoff: { initial: 60_000, max: 60_000 } });
    await waitFor(() => h.source.stats().state === "waiting", "the back-off wait");
    const t0 = Date.now();
    await h.stop();
    await h.done;
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(h.source.stats().state, "stopped");
  });
});

describe("AmiSource: a manager user without read = security", () => {
  it("receives nothing and warns after silenceWarning", async () => {
    const h = await start({ users: { ips: { secret: "s3cret", read: "system,call" } } }, { silenceWarning: 200 });
    await waitFor(() => h.source.stats().logins === 1, "login");
    // An attack happens; Asterisk does not deliver it to this user.
    assert.equal(h.server.broadcast(SAMPLE[1]!), 0);
    await waitFor(() => h.logs.some((l) => l.level === "warn"), "the silence warning");
    const warn = h.logs.find((l) => l.level === "warn")!;
    assert.equal(
      warn.msg,
      `no security events received from 127.0.0.1:${h.server.port} in 200ms: does the manager user 'ips' have \`read = security\`?`,
    );
    assert.equal(h.source.stats().silenceWarnings, 1);
    assert.equal(h.records.length, 0);
  });

  it("does not warn when events arrive", async () => {
    const h = await start({ reportLogins: true }, { silenceWarning: 200 });
    await waitFor(() => h.records.length >= 1, "our own SuccessfulAuth");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(h.source.stats().silenceWarnings, 0);
  });
});

describe("AmiSource: a 100,000 events/s stream", () => {
  it("delivers and parses every event without the server dropping us", async () => {
    const COUNT = 100_000;
    // Vary the attacker so the stream is not one repeated string.
    const pool: string[] = [];
    for (let i = 0; i < 500; i++) {
      const base = SAMPLE[(i % (SAMPLE.length - 1)) + 1]!;
      pool.push(base.replace(/RemoteAddress: (IPV4\/\w+\/)[\d.]+\//, `RemoteAddress: $1198.51.100.${i % 250}/`));
    }
    let counted = 0;
    let attacks = 0;
    const { logger } = capture();
    const server = await FakeAmiServer.start({
      writeTimeoutMs: 2000,
      reportLogins: false,
      onLogin: (s) => s.blast(pool, COUNT, { rate: 100_000 }),
    });
    const source = new AmiSource(config(server.port), { ...FAST, logger });
    const ac = new AbortController();
    const done = source.run((r) => {
      const ev = amiParser.parse(r.text, CTX);
      if (ev) counted++;
      if (ev && ev.kind !== "challenge_sent" && ev.kind !== "auth_ok") attacks++;
    }, ac.signal);
    cleanups.push(async () => {
      ac.abort();
      await done;
      await server.close();
    });
    await waitFor(() => counted >= COUNT, `${COUNT} events`, 60_000);
    assert.equal(counted, COUNT);
    assert.ok(attacks > COUNT / 2);
    assert.equal(server.writeTimeouts, 0, "the server never found our socket stalled");
    assert.equal(source.stats().reconnects, 0);
    assert.equal(source.stats().events, COUNT);
  });
});

describe("AmiSource: what is not a connection problem", () => {
  it("rejects run with SOURCE_FAILED when the pipeline behind emit throws, without reconnecting", async () => {
    const server = await FakeAmiServer.start({ reportLogins: false, onLogin: (s) => s.replay(SAMPLE[1]!) });
    const source = new AmiSource(config(server.port), FAST);
    const ac = new AbortController();
    const done = source.run(() => {
      throw new Error("store is full");
    }, ac.signal);
    cleanups.push(async () => {
      ac.abort();
      await done.catch(() => {});
      await server.close();
    });
    await assert.rejects(done, (e: unknown) => isSipwardenError(e, "SOURCE_FAILED") && /store is full/.test(e.message));
    assert.equal(server.connections, 1);
    assert.equal(source.stats().state, "stopped");
  });

  it("ignores AMI events of other classes, and counts them", async () => {
    const fullyBooted = frame([
      ["Event", "FullyBooted"],
      ["Privilege", "system,all"],
      ["Uptime", "5"],
      ["LastReload", "5"],
      ["Status", "Fully Booted"],
    ]);
    const h = await start({ onLogin: (s) => s.replay(fullyBooted + SAMPLE[1]!) });
    await waitFor(() => h.records.length === 1, "the security event");
    assert.equal(h.source.stats().otherEvents, 1);
    assert.match(h.records[0]!.text, /^Event: InvalidAccountID\n/);
  });

  it("refuses to run twice at once", async () => {
    const h = await start();
    await assert.rejects(
      h.source.run(() => {}, new AbortController().signal),
      (e: unknown) => isSipwardenError(e, "SOURCE_FAILED") && /already running/.test(e.message),
    );
  });
});

describe("backoffDelay", () => {
  const b = { initial: 500, max: 30_000, factor: 2, jitter: 0 };
  it("doubles from the initial delay and stops at the cap", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 5, 6, 7, 100, 10_000].map((n) => backoffDelay(b, n)),
      [500, 1000, 2000, 4000, 16_000, 30_000, 30_000, 30_000, 30_000],
    );
  });
  it("spreads by the jitter fraction and never passes the cap", () => {
    const j = { ...b, jitter: 0.2 };
    assert.equal(
      backoffDelay(j, 2, () => 0),
      1600,
    );
    assert.equal(
      backoffDelay(j, 2, () => 1),
      2400,
    );
    assert.equal(
      backoffDelay(j, 20, () => 1),
      30_000,
    );
  });
});

describe("AmiSource: time spent disconnected", () => {
  it("adds up every gap until the stop, and nothing after it", async () => {
    let t = 1_000;
    const h = await start({}, {}, { now: () => t, backoff: { initial: 600_000, max: 600_000, jitter: 0 } });
    await waitFor(() => h.source.stats().logins === 1, "login");
    assert.equal(h.source.stats().disconnectedMs, 0, "logged in before the clock moved");
    t = 10_000;
    h.server.sessions[0]!.destroy();
    await waitFor(() => h.source.stats().state === "waiting", "the drop to be noticed");
    t = 12_500;
    assert.equal(h.source.stats().connected, false);
    assert.equal(h.source.stats().disconnectedMs, 2_500, "the current gap counts");
    assert.equal(h.source.stats().nextAttemptAt, 10_000 + 600_000);
    h.abort();
    await h.done;
    t = 20_000;
    assert.equal(h.source.stats().disconnectedMs, 2_500, "time after the stop does not count");
    assert.match(
      h.source.status().detail!,
      /^stopped 127\.0\.0\.1:\d+: 127\.0\.0\.1:\d+ closed the connection; 0 events/,
    );
  });
});
