/**
 * Metrics end to end: `sipwarden run` as a child process with the TCP API on 127.0.0.1 and
 * StatsD pointed at a UDP listener of the test. Attack lines appended to the log must show up
 * in `/metrics` (TCP listener only, behind its token) and as StatsD packets.
 */
import assert from "node:assert/strict";
import { appendFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { apiCall, apiRequest } from "../../src/api/client.js";
import { type DaemonProc, pjsipFailure, startDaemon, tempDir, waitFor, writeConfig } from "../helpers/daemon-proc.js";
import { type Exposition, parseExposition, value } from "./exposition.js";
import { UdpSink } from "./udp-sink.js";

const TOKEN = "metrics-test-token";

/** A TCP port that was free a moment ago (bound to 0 and released). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function getMetrics(port: number, token?: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
}

describe("metrics in the daemon", { timeout: 120_000 }, () => {
  let sink: UdpSink;
  const running: DaemonProc[] = [];
  before(async () => {
    sink = await UdpSink.start();
  });
  after(async () => {
    for (const d of running) await d.stop("SIGKILL");
    await sink.close();
  });

  it("serves /metrics on the TCP API and sends StatsD counts for appended attack lines", async () => {
    const dir = tempDir("sw-metrics-");
    const log = join(dir, "full");
    writeFileSync(log, "");
    const port = await freePort();
    const cfg = writeConfig(
      dir,
      [
        "time: { zone: UTC }",
        `api: { tcp: { host: 127.0.0.1, port: ${port}, token: ${TOKEN} } }`,
        `metrics: { statsd: { host: 127.0.0.1, port: ${sink.port}, prefix: security } }`,
        "",
      ].join("\n"),
    );
    const d = await startDaemon({
      dir,
      args: ["-c", cfg, "--log", log, "--format", "asterisk", "--backend", "dry-run"],
      env: { SW_TEST_TSX: "1" },
    });
    running.push(d);
    const source = `file:${log}`;

    for (let i = 0; i < 6; i++) appendFileSync(log, pjsipFailure("198.51.100.7", i) + "\n");
    appendFileSync(log, "[2024-05-14 10:21:07] VERBOSE[2191] pbx.c: an ordinary line\n");
    appendFileSync(log, pjsipFailure("198.51.100.8", 1) + "\n");
    await waitFor("the ban", async () => (await d.bans()).some((b) => b.ip === "198.51.100.7"));

    // The token guards /metrics like the rest of the TCP API; the Unix socket has no /metrics.
    assert.equal((await getMetrics(port)).status, 401);
    assert.equal((await apiRequest("GET", "/metrics", undefined, { socket: d.socket })).status, 404);

    const scrape = async (): Promise<Exposition> => {
      const r = await getMetrics(port, TOKEN);
      assert.equal(r.status, 200);
      assert.match(r.type, /^text\/plain; version=0\.0\.4/);
      return parseExposition(r.body);
    };
    // A ban is counted once the firewall has it, a moment after the store: wait for the counter.
    const e = (await waitFor("bans_total in /metrics", async () => {
      const x = await scrape();
      return value(x, "sipwarden_bans_total", { rule: "sip-auth-bruteforce" }) === 1 ? x : null;
    }))!;
    assert.equal(value(e, "sipwarden_info", { version: "0.1.0", backend: "dry-run" }), 1);
    assert.equal(value(e, "sipwarden_records_total", { source }), 8);
    assert.equal(value(e, "sipwarden_events_total", { server: "asterisk", service: "PJSIP", kind: "auth_failed" }), 7);
    assert.equal(value(e, "sipwarden_active_bans", { rule: "sip-auth-bruteforce" }), 1);
    assert.equal(value(e, "sipwarden_time_to_ban_seconds_count"), 1);
    assert.equal(value(e, "sipwarden_source_up", { source }), 1);
    assert.equal(value(e, "sipwarden_source_restarts_total", { source }), 0);
    assert.equal(value(e, "sipwarden_lines_skipped_total", { source, reason: "parser_error" }), 0);
    const lag = value(e, "sipwarden_source_lag_seconds", { source });
    assert.ok(lag !== undefined && lag > -1 && lag < 60, `lag ${lag}`);
    assert.equal(value(e, "sipwarden_enforcer_errors_total", { backend: "dry-run", type: "command" }), 0);
    assert.ok((value(e, "sipwarden_detector_tracked_keys") ?? 0) >= 1);

    // StatsD: one flush a second; counts add up to the events whatever the packet split.
    const want = new Map([
      ["security.failed_auth.PJSIP.IPV4/198_51_100_7", 6],
      ["security.failed_auth.PJSIP.IPV4/198_51_100_8", 1],
      ["security.failed_auth.PJSIP.count", 7],
      ["security.events.auth_failed", 7],
      ["security.bans.sip-auth-bruteforce", 1],
    ]);
    const done = () => [...want].every(([k, v]) => sink.counts().get(k) === v);
    await sink.until("the StatsD counts", done, 15_000);
    assert.deepEqual([...sink.counts().keys()].sort(), [...want.keys()].sort(), "nothing else was sent");
    assert.match(
      sink.lines().find((l) => l.includes("198_51_100_7"))!,
      /^security\.failed_auth\.PJSIP\.IPV4\/198_51_100_7:\d+\|c$/,
    );

    // A manual unban through the API: counted by the rule that made the ban.
    await apiCall("DELETE", "/v1/bans/198.51.100.7", undefined, { socket: d.socket });
    const e2 = (await waitFor("the unban in /metrics", async () => {
      const x = await scrape();
      return value(x, "sipwarden_unbans_total", { rule: "sip-auth-bruteforce", reason: "manual" }) === 1 ? x : null;
    }))!;
    assert.equal(value(e2, "sipwarden_active_bans", { rule: "sip-auth-bruteforce" }), 0);
    await sink.until("the StatsD unban", () => sink.counts().get("security.unbans.sip-auth-bruteforce") === 1, 15_000);

    // A reload rebuilds the engine and notifier: the counters carry on.
    d.child.kill("SIGHUP");
    await waitFor("the reload", () => /"msg":"reloaded"/.test(d.output()));
    appendFileSync(log, pjsipFailure("198.51.100.8", 2) + "\n");
    const e3 = (await waitFor("the event after the reload", async () => {
      const x = await scrape();
      const n = value(x, "sipwarden_events_total", { server: "asterisk", service: "PJSIP", kind: "auth_failed" });
      return n === 8 ? x : null;
    }))!;
    assert.equal(value(e3, "sipwarden_records_total", { source }), 9);
    assert.equal(value(e3, "sipwarden_bans_total", { rule: "sip-auth-bruteforce" }), 1);
    await sink.until(
      "the StatsD count after the reload",
      () => sink.counts().get("security.failed_auth.PJSIP.count") === 8,
    );
    assert.equal(await d.stop(), 0);
  });

  it("takes the StatsD receiver from --statsd, and has no /metrics without api.tcp", async () => {
    sink.clear();
    const dir = tempDir("sw-metrics-");
    const log = join(dir, "full");
    writeFileSync(log, "");
    const cfg = writeConfig(dir, "time: { zone: UTC }\n");
    const d = await startDaemon({
      dir,
      args: [
        "-c",
        cfg,
        "--log",
        log,
        "--format",
        "asterisk",
        "--backend",
        "dry-run",
        "--statsd",
        `127.0.0.1:${sink.port}`,
      ],
      env: { SW_TEST_TSX: "1" },
    });
    running.push(d);
    appendFileSync(log, pjsipFailure("198.51.100.9", 1) + "\n");
    await sink.until(
      "the StatsD line",
      () => sink.counts().get("security.failed_auth.PJSIP.IPV4/198_51_100_9") === 1,
      15_000,
    );
    assert.equal((await apiRequest("GET", "/metrics", undefined, { socket: d.socket })).status, 404);
    // A count still pending at SIGTERM is sent by the close in stop(), if the 1 s timer has not sent it.
    appendFileSync(log, pjsipFailure("198.51.100.9", 2) + "\n");
    await waitFor("the second event", async () => (await d.status()).eventsTotal === 2);
    assert.equal(await d.stop(), 0);
    await sink.until("the count sent at stop", () => sink.counts().get("security.failed_auth.PJSIP.count") === 2);
  });
});
