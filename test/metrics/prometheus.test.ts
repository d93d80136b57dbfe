/**
 * The Prometheus exposition after feeding records, events, bans and stage figures through the
 * Metrics facade: every documented metric is there, with its type, help, labels and value.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Fastify from "fastify";
import { SipwardenError } from "../../src/core/errors.js";
import type { SecurityEvent } from "../../src/core/events.js";
import type { Decision } from "../../src/detect/types.js";
import { type EnforcerStats, emptyStats } from "../../src/enforce/types.js";
import { METRICS, type MetricDoc } from "../../src/metrics/catalog.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { MAX_EVENT_SERIES } from "../../src/metrics/prometheus.js";
import { metricsRoute } from "../../src/metrics/route.js";
import type { SinkStats } from "../../src/notify/types.js";
import type { BanRow } from "../../src/store/types.js";
import { attack, hostile, record, T0 } from "./events.js";
import { type Exposition, parseExposition, samplesOf, value } from "./exposition.js";

const FULL = "file:/var/log/asterisk/full";
const AMI = "ami:pbx1";
const KAM = "file:/var/log/kamailio.log";

function banRow(target: string, rule: string): BanRow {
  return {
    target,
    rule,
    reason: "test",
    source: rule === "manual" ? "manual" : "rule",
    since: T0,
    expiresAt: null,
    count: 5,
    detail: null,
  };
}

function decision(rule: string, event: SecurityEvent, extra: Partial<Decision> = {}): Decision {
  return {
    target: "198.51.100.23",
    ip: "198.51.100.23",
    rule,
    description: rule,
    count: 5,
    first: T0,
    last: T0,
    duration: 3_600_000,
    simulate: false,
    labels: {},
    event,
    ...extra,
  };
}

function sinkStats(s: Partial<SinkStats>): SinkStats {
  return { sent: 0, failed: 0, retried: 0, dropped: 0, pending: 0, ...s };
}

/** Drives the facade the way the daemon does and returns it with mutable stage figures. */
function scenario() {
  const m = new Metrics({ prometheus: true });
  const stage = {
    sources: [
      { id: FULL, state: "running" as const, restarts: 2 },
      { id: AMI, state: "backing-off" as const, restarts: 5 },
    ],
    enforcer: {
      ...emptyStats(),
      commands: 12,
      failures: 2,
      retries: 3,
      dropped: 1,
      conntrackFailures: 4,
    } as EnforcerStats,
    notifier: {
      email: sinkStats({ sent: 5, failed: 1, dropped: 2, pending: 3 }),
      "webhook:hooks.example.net": sinkStats({ sent: 7 }),
    } as Record<string, SinkStats>,
    trackedKeys: 17,
  };
  m.bind({
    sources: () => stage.sources,
    enforcer: () => ({ backend: "nftables", stats: () => stage.enforcer }),
    notifier: () => stage.notifier,
    engine: () => ({ trackedKeys: stage.trackedKeys }),
  });
  m.setInfo("0.1.0", "nftables");
  m.seed([banRow("198.51.100.200", "sip-auth-bruteforce")]);
  const h = m.hooks;
  const feed = (source: string, received: number, e: SecurityEvent | null) => {
    const r = record(source, received);
    h.record!(r);
    if (e) h.event!(e, r);
    return r;
  };
  for (let i = 0; i < 6; i++) feed(FULL, T0 + 250, null); // ordinary lines
  for (let i = 0; i < 4; i++) feed(FULL, T0 + 250, attack("auth_failed", "198.51.100.23", { transport: "udp" }));
  feed(FULL, T0 + 250, hostile());
  const bad = feed(FULL, T0 + 250, null);
  h.skipped!(bad, "parser_error");
  const r = feed(AMI, T0 + 1500, attack("unknown_account", "2001:db8::77", { service: "AMI", transport: "tcp" }));
  h.skipped!(r, "detector_error");
  feed(KAM, T0 + 2000, attack("flood", "198.51.100.9", { server: "kamailio", service: "pike" }));
  const ev = attack("auth_failed", "198.51.100.23");
  m.banListener.banned!(banRow("198.51.100.23", "sip-auth-bruteforce"), 40, decision("sip-auth-bruteforce", ev));
  m.banListener.banned!(banRow("198.51.100.0/28", "manual"), 0); // manual: no time-to-ban sample
  m.banListener.unbanned!("198.51.100.200", "expiry");
  m.banListener.unbanned!("198.51.100.0/28", "api");
  m.banListener.simulated!(decision("sip-scanner-report", ev, { simulate: true }));
  m.suppressed(decision("sip-auth-bruteforce", ev, { suppressed: "allowlist" }));
  m.suppressed(decision("sip-auth-bruteforce", ev, { suppressed: "self" }));
  m.banListener.enforceFailed!("127.0.0.1", new SipwardenError("ADDRESS_REFUSED", "loopback"));
  m.banListener.enforceFailed!("198.51.100.30", new SipwardenError("ENFORCER_FAILED", "nft failed"));
  return { m, stage };
}

async function scrape(m: Metrics): Promise<Exposition> {
  return parseExposition(await m.prometheus!.render());
}

function labelKeys(d: MetricDoc): string[] {
  return [...d.labels].sort();
}

describe("Prometheus metrics", () => {
  it("exposes every documented metric with its type, help text and labels", async () => {
    const { m } = scenario();
    const e = await scrape(m);
    for (const d of Object.values(METRICS)) {
      assert.equal(e.types.get(d.name), d.type, `${d.name} type`);
      assert.equal(e.helps.get(d.name), d.help, `${d.name} help`);
      const samples =
        d.type === "histogram"
          ? samplesOf(e, `${d.name}_bucket`).map((s) => ({
              ...s,
              labels: Object.fromEntries(Object.entries(s.labels).filter(([k]) => k !== "le")),
            }))
          : samplesOf(e, d.name);
      assert.ok(samples.length > 0, `${d.name} has samples`);
      for (const s of samples) assert.deepEqual(Object.keys(s.labels).sort(), labelKeys(d), `${d.name} labels`);
    }
    // Every sipwarden_* family in the output is documented.
    const documented = new Set<string>(Object.values(METRICS).map((d) => d.name));
    for (const name of e.types.keys()) if (name.startsWith("sipwarden_")) assert.ok(documented.has(name), name);
    // prom-client's process metrics are there too.
    assert.equal(e.types.get("process_cpu_user_seconds_total"), "counter");
    assert.equal(e.types.get("nodejs_eventloop_lag_seconds"), "gauge");
  });

  it("counts records, events, skipped lines and lag per source", async () => {
    const { m } = scenario();
    const e = await scrape(m);
    assert.equal(value(e, "sipwarden_info", { version: "0.1.0", backend: "nftables" }), 1);
    assert.equal(value(e, "sipwarden_records_total", { source: FULL }), 12);
    assert.equal(value(e, "sipwarden_records_total", { source: AMI }), 1);
    assert.equal(value(e, "sipwarden_records_total", { source: KAM }), 1);
    const ev = (server: string, service: string, kind: string) =>
      value(e, "sipwarden_events_total", { server, service, kind });
    assert.equal(ev("asterisk", "PJSIP", "auth_failed"), 4);
    assert.equal(ev("asterisk", "PJSIP", "hostile"), 1);
    assert.equal(ev("asterisk", "AMI", "unknown_account"), 1);
    assert.equal(ev("kamailio", "pike", "flood"), 1);
    assert.equal(samplesOf(e, "sipwarden_events_total").length, 4);
    const sk = (source: string, reason: string) => value(e, "sipwarden_lines_skipped_total", { source, reason });
    assert.equal(sk(FULL, "parser_error"), 1);
    assert.equal(sk(FULL, "hostile"), 1);
    assert.equal(sk(FULL, "detector_error"), 0);
    assert.equal(sk(AMI, "detector_error"), 1);
    assert.equal(value(e, "sipwarden_source_lag_seconds", { source: FULL }), 0.25);
    assert.equal(value(e, "sipwarden_source_lag_seconds", { source: AMI }), 1.5);
    assert.equal(value(e, "sipwarden_source_lag_seconds", { source: KAM }), 2);
  });

  it("counts bans, unbans, active bans, time to ban and failures by rule", async () => {
    const { m } = scenario();
    const e = await scrape(m);
    assert.equal(value(e, "sipwarden_bans_total", { rule: "sip-auth-bruteforce" }), 1);
    assert.equal(value(e, "sipwarden_bans_total", { rule: "manual" }), 1);
    assert.equal(value(e, "sipwarden_unbans_total", { rule: "sip-auth-bruteforce", reason: "expiry" }), 1);
    assert.equal(value(e, "sipwarden_unbans_total", { rule: "manual", reason: "manual" }), 1);
    // The seeded ban expired, the rule ban stays, the manual ban was lifted: its gauge reads 0.
    assert.equal(value(e, "sipwarden_active_bans", { rule: "sip-auth-bruteforce" }), 1);
    assert.equal(value(e, "sipwarden_active_bans", { rule: "manual" }), 0);
    assert.equal(value(e, "sipwarden_time_to_ban_seconds_count"), 1);
    assert.equal(value(e, "sipwarden_time_to_ban_seconds_sum"), 0.04);
    assert.equal(value(e, "sipwarden_time_to_ban_seconds_bucket", { le: "0.025" }), 0);
    assert.equal(value(e, "sipwarden_time_to_ban_seconds_bucket", { le: "0.05" }), 1);
    assert.equal(value(e, "sipwarden_time_to_ban_seconds_bucket", { le: "+Inf" }), 1);
    assert.equal(value(e, "sipwarden_bans_simulated_total", { rule: "sip-scanner-report" }), 1);
    assert.equal(value(e, "sipwarden_bans_suppressed_total", { rule: "sip-auth-bruteforce", reason: "allowlist" }), 1);
    assert.equal(value(e, "sipwarden_bans_suppressed_total", { rule: "sip-auth-bruteforce", reason: "self" }), 1);
    assert.equal(value(e, "sipwarden_ban_failures_total", { reason: "refused" }), 1);
    assert.equal(value(e, "sipwarden_ban_failures_total", { reason: "error" }), 1);
  });

  it("reads sources, firewall, notifier and detector figures at scrape time", async () => {
    const { m, stage } = scenario();
    let e = await scrape(m);
    assert.equal(value(e, "sipwarden_source_up", { source: FULL }), 1);
    assert.equal(value(e, "sipwarden_source_up", { source: AMI }), 0);
    assert.equal(value(e, "sipwarden_source_restarts_total", { source: AMI }), 5);
    assert.equal(value(e, "sipwarden_enforcer_commands_total", { backend: "nftables" }), 12);
    assert.equal(value(e, "sipwarden_enforcer_errors_total", { backend: "nftables", type: "command" }), 2);
    assert.equal(value(e, "sipwarden_enforcer_errors_total", { backend: "nftables", type: "conntrack" }), 4);
    assert.equal(value(e, "sipwarden_enforcer_errors_total", { backend: "nftables", type: "gave_up" }), 1);
    assert.equal(value(e, "sipwarden_enforcer_retries_total", { backend: "nftables" }), 3);
    assert.equal(value(e, "sipwarden_notify_sent_total", { sink: "email" }), 5);
    assert.equal(value(e, "sipwarden_notify_sent_total", { sink: "webhook:hooks.example.net" }), 7);
    assert.equal(value(e, "sipwarden_notify_failures_total", { sink: "email", type: "failed" }), 1);
    assert.equal(value(e, "sipwarden_notify_failures_total", { sink: "email", type: "dropped" }), 2);
    assert.equal(value(e, "sipwarden_notify_pending", { sink: "email" }), 3);
    assert.equal(value(e, "sipwarden_detector_tracked_keys"), 17);
    assert.equal(value(e, "sipwarden_statsd_errors_total"), 0);

    // A reload builds a new notifier (counters from 0) and a new supervisor: exported counters keep growing.
    stage.notifier = { email: sinkStats({ sent: 2 }) };
    stage.sources = [{ id: AMI, state: "running", restarts: 1 }];
    stage.enforcer = { ...stage.enforcer, commands: 20 };
    e = await scrape(m);
    assert.equal(value(e, "sipwarden_notify_sent_total", { sink: "email" }), 7);
    assert.equal(value(e, "sipwarden_notify_failures_total", { sink: "email", type: "failed" }), 1);
    assert.equal(value(e, "sipwarden_notify_pending", { sink: "email" }), 0);
    assert.equal(value(e, "sipwarden_source_restarts_total", { source: AMI }), 6);
    assert.equal(value(e, "sipwarden_source_up", { source: AMI }), 1);
    assert.equal(value(e, "sipwarden_source_up", { source: FULL }), undefined, "a source that is gone is not shown");
    assert.equal(value(e, "sipwarden_enforcer_commands_total", { backend: "nftables" }), 20);
  });

  it("keeps the counts of a notifier or supervisor that a reload replaced", async () => {
    const { m, stage } = scenario();
    await scrape(m); // email sent 5, AMI restarts 5
    stage.notifier.email!.sent = 6; // one more after the scrape, before the reload
    m.retireNotifier(stage.notifier);
    m.retireSources(stage.sources);
    // The new ones count from 0 and pass the old figures before the next scrape.
    stage.notifier = { email: sinkStats({ sent: 9, failed: 2 }) };
    stage.sources = [{ id: AMI, state: "running", restarts: 7 }];
    const e = await scrape(m);
    assert.equal(value(e, "sipwarden_notify_sent_total", { sink: "email" }), 15);
    assert.equal(value(e, "sipwarden_notify_failures_total", { sink: "email", type: "failed" }), 3);
    assert.equal(value(e, "sipwarden_notify_failures_total", { sink: "email", type: "dropped" }), 2);
    assert.equal(value(e, "sipwarden_source_restarts_total", { source: AMI }), 12);
  });

  it("keeps counting across scrapes", async () => {
    const { m } = scenario();
    await scrape(m);
    const r = record(FULL);
    m.hooks.record!(r);
    m.hooks.event!(attack("auth_failed", "198.51.100.23"), r);
    const e = await scrape(m);
    assert.equal(value(e, "sipwarden_records_total", { source: FULL }), 13);
    assert.equal(value(e, "sipwarden_events_total", { server: "asterisk", service: "PJSIP", kind: "auth_failed" }), 5);
  });

  it("bounds the event series: services past the limit count as service=other", async () => {
    const m = new Metrics({ prometheus: true, defaultMetrics: false });
    const r = record(FULL);
    const extra = 30;
    for (let i = 0; i < MAX_EVENT_SERIES + extra; i++)
      for (let k = 0; k < 2; k++) m.hooks.event!(attack("auth_failed", "198.51.100.1", { service: `svc${i}` }), r);
    const e = await scrape(m);
    const series = samplesOf(e, "sipwarden_events_total");
    assert.equal(series.length, MAX_EVENT_SERIES + 1);
    assert.equal(value(e, "sipwarden_events_total", { server: "asterisk", service: "svc0", kind: "auth_failed" }), 2);
    assert.equal(
      value(e, "sipwarden_events_total", { server: "asterisk", service: "other", kind: "auth_failed" }),
      2 * extra,
    );
    assert.equal(
      series.reduce((a, s) => a + s.value, 0),
      2 * (MAX_EVENT_SERIES + extra),
    );
  });

  it("serves GET /metrics in the text format", async () => {
    const { m } = scenario();
    const app = Fastify();
    metricsRoute(m.prometheus!)(app);
    try {
      const res = await app.inject({ method: "GET", url: "/metrics" });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
      const e = parseExposition(res.body);
      assert.equal(value(e, "sipwarden_bans_total", { rule: "sip-auth-bruteforce" }), 1);
    } finally {
      await app.close();
    }
  });

  it("does no Prometheus work when it is switched off", () => {
    const m = new Metrics({ prometheus: false });
    assert.equal(m.prometheus, null);
    assert.deepEqual(Object.keys(m.hooks), [], "no ingest hooks at all without Prometheus and StatsD");
    // The ban listener still tolerates every call.
    m.banListener.banned!(banRow("198.51.100.1", "r"), 1);
    m.banListener.unbanned!("198.51.100.1", "expiry");
  });
});
