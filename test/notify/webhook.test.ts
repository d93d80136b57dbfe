import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { configSchema, type WebhookConfig } from "../../src/config/schema.js";
import { isSipwardenError } from "../../src/core/errors.js";
import type { BanNotice, NotifyLogger } from "../../src/notify/types.js";
import { retryAfterMs, WebhookSink } from "../../src/notify/webhook.js";
import { deadPort, type HttpReceiver, type Reply, startHttp, waitFor } from "./receivers.js";
import { FastScheduler } from "./schedulers.js";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function hookConfig(url: string, over: Record<string, unknown> = {}): WebhookConfig {
  return configSchema.parse({ notify: { webhooks: [{ url, batch: "20ms", ...over }] } }).notify.webhooks[0]!;
}

function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown> }[] = [];
  const log = (level: string) => (obj: object) => {
    lines.push({ level, obj: obj as Record<string, unknown> });
  };
  const logger: NotifyLogger = { info: log("info"), warn: log("warn"), error: log("error") };
  return { logger, lines };
}

function notice(target: string, over: Partial<BanNotice> = {}): BanNotice {
  return {
    target,
    rule: "sip-auth-bruteforce",
    reason: "5 failed auths in 1m",
    count: 5,
    duration: 3_600_000,
    first: T0,
    last: T0 + 30_000,
    ...over,
  };
}

const servers: HttpReceiver[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function http(script: (n: number) => Reply): Promise<HttpReceiver> {
  const s = await startHttp(script);
  servers.push(s);
  return s;
}

function sinkFor(url: string, over: Record<string, unknown> = {}, sched = new FastScheduler(1)) {
  const { logger, lines } = recordingLogger();
  const sink = new WebhookSink(hookConfig(url, over), {
    host: "pbx1",
    logger,
    scheduler: sched,
    retryBaseMs: 5,
  });
  return { sink, lines, sched };
}

describe("webhook sink against a real HTTP server", () => {
  test("bans in one window become one JSON POST with the configured headers", async () => {
    const rx = await http(() => ({ status: 204 }));
    const { sink } = sinkFor(rx.url, { headers: { Authorization: "Bearer t0k3n" } });
    sink.banned(notice("198.51.100.7", { count: 12 }));
    sink.banned(notice("2001:db8::66", { rule: "scanner", reason: "friendly-scanner", count: 1, duration: null }));
    sink.banned(notice("198.51.100.8"));
    await waitFor(() => rx.requests.length === 1 && sink.stats().sent === 1, "one POST");
    const req = rx.requests[0]!;
    assert.equal(req.method, "POST");
    assert.equal(req.url, "/hook/secret-token");
    assert.equal(req.headers["content-type"], "application/json");
    assert.equal(req.headers.authorization, "Bearer t0k3n");
    const body = JSON.parse(req.body);
    assert.equal(body.type, "ban");
    assert.equal(body.host, "pbx1");
    assert.match(body.time, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(body.bans, [
      {
        target: "198.51.100.7",
        rule: "sip-auth-bruteforce",
        reason: "5 failed auths in 1m",
        count: 12,
        duration: 3600,
        first: "2024-05-01T12:00:00.000Z",
        last: "2024-05-01T12:00:30.000Z",
      },
      {
        target: "2001:db8::66",
        rule: "scanner",
        reason: "friendly-scanner",
        count: 1,
        duration: null,
        first: "2024-05-01T12:00:00.000Z",
        last: "2024-05-01T12:00:30.000Z",
      },
      {
        target: "198.51.100.8",
        rule: "sip-auth-bruteforce",
        reason: "5 failed auths in 1m",
        count: 5,
        duration: 3600,
        first: "2024-05-01T12:00:00.000Z",
        last: "2024-05-01T12:00:30.000Z",
      },
    ]);
    assert.equal(body.dropped, undefined);
    assert.equal(sink.name, "webhook:127.0.0.1:" + new URL(rx.url).port, "the name never holds the secret path");
    await sink.close(1000);
  });

  test("503 twice, then success: retried with the same payload", async () => {
    const rx = await http((n) => (n < 2 ? { status: 503 } : { status: 200, body: "ok" }));
    const { sink, lines } = sinkFor(rx.url, { retries: 3 });
    sink.banned(notice("198.51.100.7"));
    await waitFor(() => sink.stats().sent === 1, "delivery after retries");
    assert.equal(rx.requests.length, 3);
    assert.equal(rx.requests[1]!.body, rx.requests[0]!.body);
    assert.equal(rx.requests[2]!.body, rx.requests[0]!.body);
    assert.deepEqual(sink.stats(), { sent: 1, failed: 0, retried: 2, dropped: 0, pending: 0 });
    assert.equal(lines.filter((l) => l.level === "warn" && l.obj.err === "HTTP 503").length, 2);
    await sink.close(1000);
  });

  test("429 with Retry-After is honoured", async () => {
    const rx = await http((n) => (n === 0 ? { status: 429, headers: { "retry-after": "2" } } : { status: 200 }));
    // 100x faster timers that record the delay asked for.
    const sched = new FastScheduler(100);
    const { sink } = sinkFor(rx.url, {}, sched);
    sink.banned(notice("198.51.100.7"));
    await waitFor(() => sink.stats().sent === 1, "delivery after Retry-After");
    assert.equal(rx.requests.length, 2);
    assert.ok(sched.delays.includes(2000), `asked delays ${sched.delays.join(",")}`);
    await sink.close(1000);
  });

  test("Retry-After: seconds, HTTP dates, garbage", () => {
    assert.equal(retryAfterMs("7", T0), 7000);
    assert.equal(retryAfterMs(new Date(T0 + 3000).toUTCString(), T0), 3000);
    assert.equal(retryAfterMs(new Date(T0 - 3000).toUTCString(), T0), 0);
    assert.equal(retryAfterMs("soon", T0), undefined);
    assert.equal(retryAfterMs(null, T0), undefined);
  });

  test("400 is not retried", async () => {
    const rx = await http(() => ({ status: 400, body: "bad" }));
    const { sink, lines } = sinkFor(rx.url, { retries: 5 });
    sink.banned(notice("198.51.100.7"));
    sink.banned(notice("198.51.100.8"));
    await waitFor(() => sink.stats().failed === 1, "failure");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(rx.requests.length, 1);
    assert.deepEqual(sink.stats(), { sent: 0, failed: 1, retried: 0, dropped: 2, pending: 0 });
    assert.ok(lines.some((l) => l.level === "error" && l.obj.status === 400));
    await sink.close(1000);
  });

  test("a hung receiver times out and is retried, while banned() stays synchronous", async () => {
    const rx = await http(() => "hang");
    const { sink } = sinkFor(rx.url, { timeout: "200ms", retries: 1 });
    sink.banned(notice("198.51.100.7"));
    await waitFor(() => rx.requests.length === 1, "the first (hung) request");

    // The receiver holds the request open. A ban now returns at once, before any I/O: the
    // server has seen nothing new and the hung request is still unanswered.
    const before = rx.requests.length;
    const result = sink.banned(notice("198.51.100.8"));
    assert.equal(result, undefined);
    assert.equal(rx.requests.length, before);
    assert.equal(rx.requests[0]!.answered, false);
    assert.equal(sink.stats().pending, 1);

    await waitFor(() => sink.stats().failed >= 1, "time-outs give up");
    assert.equal(sink.stats().retried >= 1, true);
    assert.ok(rx.requests.length >= 2, "the timed-out request was retried");
    await sink.close(500);
  });

  test("a dead receiver (connection refused) is counted as failed; nothing throws", async () => {
    const port = await deadPort();
    const { sink, lines } = sinkFor(`http://127.0.0.1:${port}/hook`, { retries: 2 });
    sink.lifecycle("start", { version: "0.1.0" });
    sink.banned(notice("198.51.100.7"));
    await waitFor(() => sink.stats().failed === 2, "both deliveries given up");
    const s = sink.stats();
    assert.equal(s.sent, 0);
    assert.equal(s.retried, 4);
    assert.equal(s.dropped, 2);
    assert.ok(lines.some((l) => l.level === "error" && /ECONNREFUSED/.test(String(l.obj.err))));
    await sink.close(500);
  });

  test("slack format sends escaped text", async () => {
    const rx = await http(() => ({ status: 200 }));
    const { sink } = sinkFor(rx.url, { format: "slack" });
    sink.banned(notice("198.51.100.7", { reason: "UA <!channel> & friends", rule: "scanner" }));
    sink.banned(notice("198.51.100.8"));
    await waitFor(() => sink.stats().sent === 1, "slack POST");
    const body = JSON.parse(rx.requests[0]!.body);
    assert.deepEqual(Object.keys(body), ["text"]);
    assert.equal(
      body.text,
      [
        "*[sipwarden] pbx1*: 2 addresses banned (scanner ×1, sip-auth-bruteforce ×1)",
        "• `198.51.100.7` scanner: 5 attempts, ban 1h — UA &lt;!channel&gt; &amp; friends",
        "• `198.51.100.8` sip-auth-bruteforce: 5 attempts, ban 1h — 5 failed auths in 1m",
      ].join("\n"),
    );
    sink.unbanned({ target: "198.51.100.7", by: "cli", reason: "false positive" });
    await waitFor(() => sink.stats().sent === 2, "slack unban POST");
    assert.equal(
      JSON.parse(rx.requests[1]!.body).text,
      "*[sipwarden] pbx1*: 1 bans lifted\n• `198.51.100.7` by cli: false positive",
    );
    await sink.close(1000);
  });

  test("a slow receiver makes the queue drop its oldest notices, and the next payload says how many", async () => {
    const rx = await http((n) => (n === 0 ? "hang" : { status: 200 }));
    const { logger } = recordingLogger();
    const sink = new WebhookSink(hookConfig(rx.url, { timeout: "300ms", retries: 0 }), {
      host: "pbx1",
      logger,
      scheduler: new FastScheduler(1),
      queueLimit: 5,
    });
    sink.banned(notice("198.51.100.1"));
    await waitFor(() => rx.requests.length === 1, "first POST in flight");
    for (let i = 2; i <= 11; i++) sink.banned(notice(`198.51.100.${i}`));
    assert.equal(sink.stats().dropped, 5, "ten queued into five places");
    assert.equal(sink.stats().pending, 5);
    // The hung first POST times out (no retries) and is lost; the five survivors go next.
    await waitFor(() => sink.stats().sent === 1, "second POST");
    assert.equal(sink.stats().failed, 1);
    const body = JSON.parse(rx.requests[1]!.body);
    assert.deepEqual(
      body.bans.map((b: { target: string }) => b.target),
      ["198.51.100.7", "198.51.100.8", "198.51.100.9", "198.51.100.10", "198.51.100.11"],
    );
    assert.equal(body.dropped, 5);
    await sink.close(1000);
  });

  test("lifecycle notices and close() flushing what waits for its window", async () => {
    const rx = await http(() => ({ status: 200 }));
    const { sink, sched } = sinkFor(rx.url, { batch: "1h" });
    sink.lifecycle("start", { version: "0.1.0", activeBans: 3, at: T0 });
    await waitFor(() => rx.requests.length === 1, "start POST");
    assert.deepEqual(JSON.parse(rx.requests[0]!.body), {
      type: "start",
      host: "pbx1",
      time: "2024-05-01T12:00:00.000Z",
      version: "0.1.0",
      activeBans: 3,
    });
    sink.banned(notice("198.51.100.7"));
    sink.unbanned({ target: "198.51.100.6", by: "expiry", at: T0 + 1 });
    sink.lifecycle("stop", { reason: "SIGTERM", at: T0 + 2 });
    await sink.close(2000);
    const types = rx.requests.map((r) => JSON.parse(r.body).type);
    assert.deepEqual(types, ["start", "ban", "unban", "stop"]);
    assert.deepEqual(JSON.parse(rx.requests[2]!.body).unbans, [
      { target: "198.51.100.6", by: "expiry", reason: null, at: "2024-05-01T12:00:00.001Z" },
    ]);
    assert.equal(sched.pending, 0, "no timer left after close");
    sink.banned(notice("198.51.100.9"));
    assert.equal(sink.stats().pending, 0, "ignored after close");
  });

  test("only http and https URLs", () => {
    const { logger } = recordingLogger();
    const cfg = hookConfig("http://127.0.0.1:1/x");
    assert.throws(
      () => new WebhookSink({ ...cfg, url: "file:///etc/passwd" }, { host: "pbx1", logger, index: 2 }),
      (e) => isSipwardenError(e, "CONFIG_INVALID") && e.path === "notify.webhooks[2].url",
    );
  });
});
