/**
 * The AMI source against the fake Asterisk (test/helpers/ami-server.ts), on 127.0.0.1 with
 * ephemeral ports. Timeouts are generous and assertions are on counts and states, never on
 * how fast something happened.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { AmiSource } from "../../src/sources/ami.js";
import { parseAmiUrl } from "../../src/sources/ami-url.js";
import type { RawRecord } from "../../src/sources/types.js";
import {
  asRecord,
  attackRecords,
  cleanups,
  config,
  FAST,
  parsed,
  SAMPLE,
  SAMPLE_STREAM,
  start,
} from "../helpers/ami-harness.js";
import { FakeAmiServer, waitFor } from "../helpers/ami-server.js";

describe("AmiSource: login", () => {
  it("logs in with the MD5 challenge, asks for security events only, and emits each one", async () => {
    const h = await start({ reportLogins: true, onLogin: (s) => s.replay(SAMPLE_STREAM) });
    await waitFor(() => attackRecords(h).length >= SAMPLE.length, "the sample events");
    const session = h.server.sessions[0]!;
    const actions = session.actions.map((a) => a.action);
    assert.deepEqual(actions.slice(0, 2), ["Challenge", "Login"]);
    const login = session.actions[1]!;
    assert.equal(login.authtype, "MD5");
    assert.match(login.key!, /^[0-9a-f]{32}$/);
    assert.equal(login.secret, undefined, "the secret never travels with MD5");
    assert.equal(login.events, "security");
    assert.equal(session.actions[0]!.actionid !== login.actionid, true);

    // Our own login shows up first as an AMI SuccessfulAuth (read = security works).
    const evs = parsed(h.records);
    assert.equal(evs[0]!.pattern, "asterisk.ami.SuccessfulAuth");
    assert.equal(evs[0]!.remote?.address, "127.0.0.1");
    const rest = attackRecords(h);
    assert.equal(rest.length, SAMPLE.length);
    rest.forEach((r, i) => {
      assert.equal(r.text, asRecord(SAMPLE[i]!));
      assert.equal(r.format, "ami");
      assert.equal(r.source, `ami:127.0.0.1:${h.server.port}`);
      assert.equal(typeof r.received, "number");
    });

    const st = h.source.stats();
    assert.equal(st.connected, true);
    assert.equal(st.state, "connected");
    assert.equal(st.amiVersion, "9.0.0");
    assert.equal(st.logins, 1);
    assert.equal(st.reconnects, 0);
    assert.equal(st.events, SAMPLE.length + 1);
    assert.ok(st.bytes > SAMPLE_STREAM.length);
    assert.ok(st.lastEventAt !== null);
    assert.match(h.source.status().detail!, /^logged in to 127\.0\.0\.1:\d+ as ips \(AMI 9\.0\.0\); 24 events/);
    assert.deepEqual(
      h.logs.map((l) => l.level),
      ["info"],
    );

    h.abort();
    await h.done;
    assert.equal(h.source.stats().state, "stopped");
    assert.equal(h.source.stats().connected, false);
    await waitFor(() => session.actions.some((a) => a.action === "Logoff"), "a polite Logoff on stop");
    await waitFor(() => session.closed, "the session to close");
  });

  it("logs in with a plain secret", async () => {
    const h = await start({ onLogin: (s) => s.replay(SAMPLE[1]!) }, { auth: "plain" });
    await waitFor(() => attackRecords(h).length >= 1, "one event");
    const actions = h.server.sessions[0]!.actions;
    assert.equal(actions[0]!.action, "Login");
    assert.equal(actions[0]!.secret, "s3cret");
    assert.equal(actions[0]!.events, "security");
    assert.equal(parsed(attackRecords(h))[0]!.kind, "unknown_account");
  });

  it("takes the secret from a file named in the ami:// URL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipwarden-ami-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "secret");
    writeFileSync(file, "s3cret\n", { mode: 0o600 });
    const server = await FakeAmiServer.start();
    const cfg = parseAmiUrl(`ami://ips@127.0.0.1:${server.port}?secretFile=${encodeURIComponent(file)}&name=pbx1`);
    const source = new AmiSource(cfg, FAST);
    assert.equal(source.id, "ami:pbx1");
    const ac = new AbortController();
    const records: RawRecord[] = [];
    const done = source.run((r) => records.push(r), ac.signal);
    cleanups.push(async () => {
      ac.abort();
      await done;
      await server.close();
    });
    await waitFor(() => source.stats().logins === 1, "login");
    assert.equal(server.failedLogins, 0);
  });

  it("names a wrong secret plainly and does not hammer Asterisk with retries", async () => {
    const h = await start({}, { secret: "Wr0ng-S3cr3t" });
    await waitFor(() => h.source.stats().authFailures === 1, "the rejected login");
    const st = h.source.stats();
    assert.equal(st.lastError?.code, "AMI_AUTH");
    assert.equal(
      st.lastError?.message,
      "Asterisk rejected the login for user 'ips': wrong secret, or the user does not exist in manager.conf" +
        " (or its permit/deny excludes this host)",
    );
    assert.equal(st.state, "waiting");
    assert.ok(st.nextAttemptAt! - Date.now() > 30_000, "the next try waits the long auth back-off");
    const err = h.logs.find((l) => l.level === "error");
    assert.ok(err);
    assert.match(err.msg, /rejected the login for user 'ips': wrong secret/);
    assert.ok(!JSON.stringify(h.logs).includes("Wr0ng-S3cr3t"), "the secret is never logged");
    assert.equal(h.server.connections, 1);
  });

  it("rejects run with AMI_AUTH at once when fatalAuth is set (an unknown user)", async () => {
    const h = await start({}, { username: "nobody" }, { fatalAuth: true });
    await assert.rejects(h.done, (e: unknown) => isSipwardenError(e, "AMI_AUTH") && /user 'nobody'/.test(e.message));
    assert.equal(h.server.failedLogins, 1);
  });

  it("rejects run for a secret with a line break (header injection), before connecting", async () => {
    const source = new AmiSource(config(1, { auth: "plain", secret: "x\r\nAction: Originate" }), FAST);
    await assert.rejects(
      source.run(() => {}, new AbortController().signal),
      (e: unknown) => isSipwardenError(e, "CONFIG_INVALID") && !e.message.includes("Originate"),
    );
    assert.equal(source.stats().reconnects, 0);
  });

  it("rejects run for an unreadable secret file (configuration, not connection)", async () => {
    const source = new AmiSource(config(1, { secret: undefined, secretFile: "/nonexistent/sipwarden-secret" }), FAST);
    await assert.rejects(
      source.run(() => {}, new AbortController().signal),
      (e: unknown) => isSipwardenError(e, "CONFIG_READ") && e.file === "/nonexistent/sipwarden-secret",
    );
  });
});

describe("AmiSource: framing over TCP", () => {
  for (const chunkSize of [1, 7, 64]) {
    it(`delivers the same records when every write is ${chunkSize} bytes`, async () => {
      const h = await start({ onLogin: (s) => s.replay(SAMPLE_STREAM, { chunkSize }) });
      await waitFor(() => attackRecords(h).length >= SAMPLE.length, "the sample events");
      assert.deepEqual(
        attackRecords(h).map((r) => r.text),
        SAMPLE.map(asRecord),
      );
    });
  }

  it("handles the whole recorded stream repeated in one write", async () => {
    const h = await start({ onLogin: (s) => s.replay(SAMPLE_STREAM.repeat(40)) });
    await waitFor(() => attackRecords(h).length >= SAMPLE.length * 40, "40 copies");
    assert.equal(attackRecords(h).length, SAMPLE.length * 40);
  });

  it("reconnects after a close mid-event, logs in again, and emits no half event", async () => {
    const cut = SAMPLE[2]!;
    const h = await start({
      onLogin: async (s) => {
        if (s.id === 1) {
          await s.replay(SAMPLE[0]! + SAMPLE[1]! + cut.slice(0, cut.length >> 1));
          setTimeout(() => s.destroy(), 50);
        } else {
          await s.replay(SAMPLE.slice(3).join(""));
        }
      },
    });
    await waitFor(() => attackRecords(h).length >= SAMPLE.length - 1, "the events of both sessions");
    const texts = attackRecords(h).map((r) => r.text);
    assert.equal(texts.length, SAMPLE.length - 1);
    assert.ok(!texts.some((t) => cut.replaceAll("\r\n", "\n").startsWith(t)), "the cut event is not emitted");
    parsed(h.records);
    const st = h.source.stats();
    assert.equal(st.cutMessages, 1);
    assert.equal(st.logins, 2);
    assert.ok(st.reconnects >= 1);
    assert.equal(h.server.logins, 2);
    assert.ok(
      h.server.sessions[1]!.actions.some((a) => a.action === "Login"),
      "logged in again",
    );
    assert.match(h.logs.find((l) => l.level === "warn")!.msg, /closed the connection \(a partial event was dropped\)/);
    assert.ok(h.logs.some((l) => l.level === "info" && / again$/.test(l.msg)));
  });

  it("copes with a slow server: late banner, events dribbled in with pauses", async () => {
    const h = await start({
      bannerDelayMs: 300,
      onLogin: (s) => s.replay(SAMPLE.slice(0, 6).join(""), { chunkSize: 9, delayMs: 3 }),
    });
    await waitFor(() => attackRecords(h).length >= 6, "6 slow events");
    assert.equal(attackRecords(h).length, 6);
    assert.equal(h.source.stats().reconnects, 0);
  });
});
