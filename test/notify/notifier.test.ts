import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { configSchema } from "../../src/config/schema.js";
import { createNotifier, Notifier } from "../../src/notify/notifier.js";
import type { BanNotice, NotifyLogger, Sink, SinkStats } from "../../src/notify/types.js";
import { type HttpReceiver, type SmtpReceiver, startHttp, startSilentTcp, startSmtp, waitFor } from "./receivers.js";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
  const log = (level: string) => (obj: object, msg?: string) => {
    lines.push({ level, obj: obj as Record<string, unknown>, ...(msg === undefined ? {} : { msg }) });
  };
  const logger: NotifyLogger = { info: log("info"), warn: log("warn"), error: log("error") };
  return { logger, lines };
}

function notice(target: string): BanNotice {
  return { target, rule: "scanner", reason: "friendly-scanner", count: 1, duration: 600_000, first: T0, last: T0 };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

describe("notifier", () => {
  test("fans one ban out to e-mail and every webhook, built from the config", async () => {
    const smtp: SmtpReceiver = await startSmtp();
    const json: HttpReceiver = await startHttp(() => ({ status: 200 }));
    const slack: HttpReceiver = await startHttp(() => ({ status: 200 }));
    closers.push(smtp.close, json.close, slack.close);
    const config = configSchema.parse({
      notify: {
        email: { host: "127.0.0.1", port: smtp.port, from: "sw@example.net", to: ["ops@example.net"], batch: "20ms" },
        webhooks: [
          { url: json.url, batch: "20ms" },
          { url: slack.url, batch: "20ms", format: "slack" },
        ],
      },
    });
    const { logger } = recordingLogger();
    const n = createNotifier(config.notify, { logger, host: "pbx1" });
    assert.deepEqual(n.names, ["email", `webhook:${new URL(json.url).host}`, `webhook[1]:${new URL(slack.url).host}`]);
    n.lifecycle("start", { version: "0.1.0" });
    n.banned(notice("198.51.100.7"));
    await waitFor(() => smtp.mails.length >= 1 && json.requests.length >= 2 && slack.requests.length >= 2, "all sinks");
    n.lifecycle("stop", {});
    await n.close(3000);
    assert.ok(smtp.mails.some((m) => /198\.51\.100\.7/.test(m.text)));
    assert.ok(json.requests.some((r) => JSON.parse(r.body).bans?.[0]?.target === "198.51.100.7"));
    assert.ok(slack.requests.some((r) => /198\.51\.100\.7/.test(JSON.parse(r.body).text)));
    const stats = n.stats();
    assert.deepEqual(Object.keys(stats), n.names);
    for (const s of Object.values(stats)) {
      assert.equal(s.failed, 0);
      assert.equal(s.dropped, 0);
      assert.ok(s.sent >= 1);
    }
  });

  test("the ban path never waits: 10,000 calls with every receiver hung do no I/O", async () => {
    const silent = await startSilentTcp();
    const hung = await startHttp(() => "hang");
    closers.push(silent.close, hung.close);
    const config = configSchema.parse({
      notify: {
        email: { host: "127.0.0.1", port: silent.port, from: "sw@example.net", to: ["ops@example.net"], batch: "0s" },
        webhooks: [{ url: hung.url, batch: "0s", timeout: "30s" }],
      },
    });
    const { logger } = recordingLogger();
    const n = createNotifier(config.notify, { logger, host: "pbx1", email: { smtpTimeoutMs: 30_000 } });
    n.banned(notice("198.51.100.1"));
    await waitFor(() => hung.requests.length === 1, "a request stuck on the hung webhook");
    const seen = hung.requests.length;
    for (let i = 0; i < 10_000; i++) {
      const r = n.banned(notice(`2001:db8:b::${i.toString(16)}`));
      assert.equal(r, undefined);
    }
    // Synchronous calls cannot have let any I/O run: the receiver saw nothing new.
    assert.equal(hung.requests.length, seen);
    assert.equal(hung.requests[0]!.answered, false);
    const pending = n.stats();
    assert.ok(Object.values(pending).every((s) => s.pending > 0));
    await n.close(300);
    const s = n.stats();
    for (const v of Object.values(s)) assert.equal(v.sent, 0);
    assert.ok(
      Object.values(s).every((v) => v.dropped > 0),
      JSON.stringify(s),
    );
  });

  test("a sink that throws is logged and never reaches the caller", async () => {
    const { logger, lines } = recordingLogger();
    const calls: string[] = [];
    const broken: Sink = {
      name: "broken",
      banned() {
        throw new Error("boom");
      },
      unbanned() {
        throw new Error("boom");
      },
      lifecycle() {
        throw new Error("boom");
      },
      stats: (): SinkStats => ({ sent: 0, failed: 0, retried: 0, dropped: 0, pending: 0 }),
      close: () => Promise.reject(new Error("close boom")),
    };
    const fine: Sink = {
      name: "fine",
      banned: (b) => calls.push(`ban ${b.target}`),
      unbanned: (u) => calls.push(`unban ${u.target}`),
      lifecycle: (p) => calls.push(p),
      stats: (): SinkStats => ({ sent: calls.length, failed: 0, retried: 0, dropped: 0, pending: 0 }),
      close: async () => {
        calls.push("closed");
      },
    };
    const n = new Notifier([broken, fine], logger);
    n.lifecycle("start");
    n.banned(notice("198.51.100.7"));
    n.unbanned({ target: "198.51.100.7", by: "cli" });
    await n.close(100);
    assert.deepEqual(calls, ["start", "ban 198.51.100.7", "unban 198.51.100.7", "closed"]);
    assert.equal(lines.filter((l) => l.msg === "notifier sink threw").length, 3);
    assert.ok(lines.some((l) => l.msg === "notifier sink failed to close"));
  });

  test("the notice is copied: the caller may reuse its object", () => {
    const got: BanNotice[] = [];
    const sink: Sink = {
      name: "capture",
      banned: (b) => got.push(b),
      unbanned() {},
      lifecycle() {},
      stats: () => ({ sent: 0, failed: 0, retried: 0, dropped: 0, pending: 0 }),
      close: async () => {},
    };
    const n = new Notifier([sink], recordingLogger().logger);
    const d = { ...notice("198.51.100.7"), extra: "not copied" };
    n.banned(d);
    d.target = "198.51.100.99";
    assert.equal(got[0]!.target, "198.51.100.7");
    assert.equal("extra" in got[0]!, false);
  });

  test("close is idempotent; later notices are ignored; no sinks is a no-op", async () => {
    const calls: string[] = [];
    const sink: Sink = {
      name: "s",
      banned: () => calls.push("ban"),
      unbanned() {},
      lifecycle() {},
      stats: () => ({ sent: 0, failed: 0, retried: 0, dropped: 0, pending: 0 }),
      close: async () => {
        calls.push("close");
      },
    };
    const n = new Notifier([sink], recordingLogger().logger);
    const a = n.close();
    const b = n.close();
    assert.equal(a, b);
    await a;
    n.banned(notice("198.51.100.7"));
    assert.deepEqual(calls, ["close"]);

    const none = createNotifier(configSchema.parse({}).notify, { logger: recordingLogger().logger });
    none.banned(notice("198.51.100.7"));
    assert.deepEqual(none.stats(), {});
    await none.close();
  });

  test("pending batch and digest timers do not keep the process alive", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "exit-child.ts")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on("close", (c, s) => resolve([c, s])),
    );
    clearTimeout(guard);
    assert.equal(out, "queued\n");
    assert.equal(signal, null, "exited by itself, not killed by the guard");
    assert.equal(code, 0);
  });
});
