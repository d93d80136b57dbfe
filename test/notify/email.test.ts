import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { configSchema, type EmailConfig } from "../../src/config/schema.js";
import { EmailSink } from "../../src/notify/email.js";
import type { BanNotice, NotifyLogger } from "../../src/notify/types.js";
import { deadPort, type ReceivedMail, type SmtpReceiver, startSilentTcp, startSmtp, waitFor } from "./receivers.js";
import { ManualScheduler } from "./schedulers.js";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
const MIN = 60_000;
const HOUR = 60 * MIN;

/** The email section exactly as the daemon gets it: through the real config schema. */
function emailConfig(port: number, over: Record<string, unknown> = {}): EmailConfig {
  const cfg = configSchema.parse({
    notify: {
      email: {
        host: "127.0.0.1",
        port,
        from: "sipwarden@pbx1.example.net",
        to: ["ops@example.net", "noc@example.net"],
        ...over,
      },
    },
  });
  return cfg.notify.email!;
}

function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
  const log =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, ...(msg === undefined ? {} : { msg }) });
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
    duration: HOUR,
    first: T0,
    last: T0 + 30_000,
    ...over,
  };
}

/** Listed rows (lines that start with an address) and the "and N more" count of one mail. */
function accounting(mail: ReceivedMail): { listed: string[]; more: number } {
  const listed: string[] = [];
  let more = 0;
  let inTable = false;
  for (const line of mail.text.split("\n")) {
    if (/^ {2}Address /.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = /^ {2}… and ([\d,]+) more/.exec(line);
    if (m) {
      more += Number(m[1]!.replace(/,/g, ""));
      inTable = false;
      continue;
    }
    const row = /^ {2}([0-9a-f.:/]+) /.exec(line);
    if (row) listed.push(row[1]!);
    else inTable = false;
  }
  return { listed, more };
}

const receivers: SmtpReceiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});
async function smtp(): Promise<SmtpReceiver> {
  const r = await startSmtp();
  receivers.push(r);
  return r;
}

describe("email sink against a real SMTP server", () => {
  test("start mail at once, bans batched into one mail, stop mail on close", async () => {
    const rx = await smtp();
    const sched = new ManualScheduler(T0);
    const { logger } = recordingLogger();
    const sink = new EmailSink(emailConfig(rx.port, { batch: "1m" }), { host: "pbx1", logger, scheduler: sched });

    sink.lifecycle("start", { version: "0.1.0", activeBans: 12 });
    sched.advance(0);
    await waitFor(() => rx.mails.length === 1, "the start mail");
    const start = rx.mails[0]!;
    assert.equal(start.subject, "[sipwarden] pbx1: started");
    assert.equal(start.from, "sipwarden@pbx1.example.net");
    assert.deepEqual(start.to, ["ops@example.net", "noc@example.net"]);
    assert.match(
      start.text,
      /sipwarden started on pbx1 at 2024-05-01 12:00:00Z \(version 0\.1\.0, 12 active bans restored\)/,
    );

    sink.banned(notice("198.51.100.7", { count: 30 }));
    sink.banned(notice("198.51.100.8"));
    sink.banned(
      notice("2001:db8::66", { rule: "scanner", reason: "User-Agent friendly-scanner", count: 1, duration: null }),
    );
    sched.advance(MIN - 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(rx.mails.length, 1, "nothing before the batch window ends");
    sched.advance(1);
    await waitFor(() => rx.mails.length === 2, "the batch mail");
    const batch = rx.mails[1]!;
    assert.equal(batch.subject, "[sipwarden] pbx1: 3 addresses banned (sip-auth-bruteforce ×2, scanner ×1)");
    const acc = accounting(batch);
    assert.deepEqual(acc.listed, ["198.51.100.7", "198.51.100.8", "2001:db8::66"], "most attempts first");
    assert.equal(acc.more, 0);
    assert.match(batch.text, /2001:db8::66 +scanner +1 permanent/);
    assert.match(batch.text, /198\.51\.100\.7 +sip-auth-bruteforce +30 1h /);

    sink.banned(notice("198.51.100.9"));
    sink.lifecycle("stop", { reason: "SIGTERM", activeBans: 4 });
    await sink.close(5000);
    assert.equal(rx.mails.length, 3);
    const stop = rx.mails[2]!;
    assert.equal(stop.subject, "[sipwarden] pbx1: stopped; 198.51.100.9 banned (sip-auth-bruteforce)");
    assert.match(stop.text, /4 active bans stay in force, reason: SIGTERM/);
    assert.deepEqual(sink.stats(), { sent: 3, failed: 0, retried: 0, dropped: 0, pending: 0 });
    assert.equal(sched.pending, 0, "close leaves no timer behind");
  });

  test("41,000 bans in a short window become a handful of mails that account for every address", async () => {
    const rx = await smtp();
    const { logger } = recordingLogger();
    const maxPerHour = 4;
    // Real timers with a short batch window, so the flood spans several windows.
    const sink = new EmailSink(emailConfig(rx.port, { batch: "50ms", maxPerHour }), { host: "pbx1", logger });
    const N = 41_000;
    const all = new Set<string>();
    for (let chunk = 0; chunk < 41; chunk++) {
      for (let k = 0; k < 1000; k++) {
        const i = chunk * 1000 + k;
        const target = `2001:db8:a::${i.toString(16)}`;
        all.add(target);
        sink.banned(notice(target, { rule: i % 7 === 0 ? "scanner" : "sip-auth-bruteforce", count: 5 + (i % 13) }));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    sink.lifecycle("stop", {});
    await sink.close(10_000);

    assert.ok(rx.mails.length >= 1 && rx.mails.length <= maxPerHour + 1, `${rx.mails.length} mails`);
    let listed = 0;
    let more = 0;
    const seen = new Set<string>();
    let banned = 0;
    for (const m of rx.mails) {
      const a = accounting(m);
      for (const t of a.listed) {
        assert.ok(all.has(t), `${t} was banned`);
        assert.ok(!seen.has(t), `${t} listed once`);
        seen.add(t);
      }
      listed += a.listed.length;
      more += a.more;
      assert.ok(a.listed.length <= 50, "at most the list limit per mail");
      const s = /[:;] ([\d,]+) addresses banned \(/.exec(m.subject);
      if (s) banned += Number(s[1]!.replace(/,/g, ""));
    }
    assert.equal(listed + more, N, "every address is listed or counted in 'and N more'");
    assert.equal(banned, N, "the subjects add up to every address");
    assert.deepEqual(sink.stats(), { sent: rx.mails.length, failed: 0, retried: 0, dropped: 0, pending: 0 });
  });

  test("over maxPerHour, bans fold into the next allowed mail", async () => {
    const rx = await smtp();
    const sched = new ManualScheduler(T0);
    const { logger } = recordingLogger();
    const sink = new EmailSink(emailConfig(rx.port, { batch: "1m", maxPerHour: 2 }), {
      host: "pbx1",
      logger,
      scheduler: sched,
    });
    sink.lifecycle("start", {});
    sched.advance(0);
    await waitFor(() => rx.mails.length === 1, "start mail");
    sink.banned(notice("198.51.100.1"));
    sched.advance(MIN);
    await waitFor(() => rx.mails.length === 2, "first ban mail");

    // The hour's two mails are used up: these wait.
    sink.banned(notice("198.51.100.2"));
    sched.advance(MIN);
    sink.banned(notice("198.51.100.3", { rule: "scanner" }));
    sched.advance(30 * MIN);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(rx.mails.length, 2, "rate limited");
    assert.equal(sink.stats().pending, 2);

    // One hour after the start mail, one slot frees up and carries both.
    sched.advance(HOUR - 32 * MIN);
    await waitFor(() => rx.mails.length === 3, "folded mail");
    const folded = rx.mails[2]!;
    assert.equal(folded.subject, "[sipwarden] pbx1: 2 addresses banned (scanner ×1, sip-auth-bruteforce ×1)");
    assert.deepEqual(accounting(folded).listed.sort(), ["198.51.100.2", "198.51.100.3"]);
    await sink.close(1000);
    assert.equal(sched.pending, 0);
  });

  test("a digest summarises each period", async () => {
    const rx = await smtp();
    const sched = new ManualScheduler(T0);
    const { logger } = recordingLogger();
    const sink = new EmailSink(emailConfig(rx.port, { batch: "1m", digest: "1h", onStartStop: false }), {
      host: "pbx1",
      logger,
      scheduler: sched,
    });
    for (let i = 1; i <= 5; i++) sink.banned(notice(`198.51.100.${i}`, { count: i * 10 }));
    sink.unbanned({ target: "198.51.100.1", by: "cli" });
    sched.advance(MIN);
    await waitFor(() => rx.mails.length === 1, "batch mail");
    assert.match(rx.mails[0]!.text, /1 bans lifted since the previous mail/);
    sched.advance(HOUR - MIN);
    await waitFor(() => rx.mails.length === 2, "digest mail");
    const d = rx.mails[1]!;
    assert.equal(d.subject, "[sipwarden] pbx1: digest: 5 banned since 2024-05-01 12:00:00Z");
    assert.match(d.text, /Digest for pbx1, 2024-05-01 12:00:00Z to 2024-05-01 13:00:00Z:/);
    assert.match(d.text, /5 addresses banned, 1 bans lifted\./);
    assert.deepEqual(accounting(d).listed, [
      "198.51.100.5",
      "198.51.100.4",
      "198.51.100.3",
      "198.51.100.2",
      "198.51.100.1",
    ]);

    // An empty period still gets its digest (the admin learns the daemon is alive).
    sched.advance(HOUR);
    await waitFor(() => rx.mails.length === 3, "second digest");
    assert.match(rx.mails[2]!.text, /0 addresses banned, 0 bans lifted\./);
    await sink.close(1000);
    assert.equal(rx.mails.length, 3, "no stop mail with onStartStop: false and nothing pending");
  });

  test("a dead SMTP server is retried, then given up and counted; nothing throws", async () => {
    const port = await deadPort();
    const sched = new ManualScheduler(T0);
    const { logger, lines } = recordingLogger();
    const sink = new EmailSink(emailConfig(port, { batch: "1m" }), {
      host: "pbx1",
      logger,
      scheduler: sched,
      maxAttempts: 2,
    });
    sink.banned(notice("198.51.100.1"));
    sink.banned(notice("198.51.100.2"));
    sched.advance(MIN);
    await waitFor(() => sink.stats().retried === 1, "first failure");
    sink.banned(notice("198.51.100.3"));
    assert.equal(sink.stats().pending, 3, "the failed content is back in front of the new ban");
    sched.advance(MIN);
    await waitFor(() => sink.stats().failed === 1, "give up");
    assert.deepEqual(sink.stats(), { sent: 0, failed: 1, retried: 1, dropped: 3, pending: 0 });
    assert.ok(lines.some((l) => l.level === "warn" && /ECONNREFUSED|connect/i.test(String(l.obj.err))));
    assert.ok(lines.some((l) => l.level === "error" && l.obj.lost === 3));
    await sink.close(1000);
  });

  test("a rejected recipient fails the mail like any other SMTP error", async () => {
    const rx = await startSmtp({
      onRcptTo(_addr, _session, cb) {
        cb(Object.assign(new Error("mailbox unavailable"), { responseCode: 550 }));
      },
    });
    receivers.push(rx);
    const sched = new ManualScheduler(T0);
    const { logger, lines } = recordingLogger();
    const sink = new EmailSink(emailConfig(rx.port), { host: "pbx1", logger, scheduler: sched, maxAttempts: 1 });
    sink.banned(notice("198.51.100.1"));
    sched.advance(MIN);
    await waitFor(() => sink.stats().failed === 1, "failure");
    assert.equal(rx.mails.length, 0);
    assert.ok(lines.some((l) => l.level === "error" && /550|mailbox/.test(String(l.obj.err))));
    await sink.close(1000);
  });

  test("banned() returns before any I/O; close() against a hung server ends within its budget", async () => {
    const silent = await startSilentTcp();
    try {
      const { logger } = recordingLogger();
      const sink = new EmailSink(emailConfig(silent.port, { batch: "10ms" }), {
        host: "pbx1",
        logger,
        smtpTimeoutMs: 60_000,
      });
      const r = sink.banned(notice("198.51.100.1"));
      assert.equal(r, undefined, "not a promise: nothing to await on the ban path");
      assert.equal(sink.stats().pending, 1);
      await new Promise((res) => setTimeout(res, 100));
      // The mail is stuck on the silent server; more bans still queue instantly.
      for (let i = 2; i < 1000; i++) sink.banned(notice(`198.51.100.${i % 250}`));
      sink.lifecycle("stop", {});
      await sink.close(300);
      const s = sink.stats();
      assert.equal(s.sent, 0);
      assert.ok(s.dropped >= 1, `dropped ${s.dropped}`);
    } finally {
      await silent.close();
    }
  });
});
