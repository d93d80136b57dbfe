/**
 * The fake Asterisk must speak the real protocol, or the AMI source tests prove nothing.
 * These tests talk to it with a bare socket and check it against formats.md §2.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterEach, describe, it } from "node:test";
import {
  EVENT_FLAGS,
  FakeAmiServer,
  type FakeAmiServerOptions,
  loadSampleStream,
  SECURITY,
  sampleSecurityEvents,
  stringsToMask,
  waitFor,
} from "../helpers/ami-server.js";

/** A bare AMI client: writes actions, collects the raw reply text. */
class Raw {
  text = "";
  closed = false;
  constructor(readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.text += d;
    });
    socket.on("close", () => {
      this.closed = true;
    });
  }
  send(s: string): void {
    this.socket.write(s);
  }
  /** Waits until `n` blank-line-terminated messages follow the banner, and returns them. */
  async messages(n: number): Promise<string[]> {
    const split = () =>
      this.text
        .slice(this.text.indexOf("\r\n") + 2)
        .split("\r\n\r\n")
        .slice(0, -1);
    await waitFor(() => split().length >= n, `${n} messages; have ${JSON.stringify(this.text)}`);
    return split().slice(0, n);
  }
}

let servers: FakeAmiServer[] = [];
let sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await s.close();
  servers = [];
  sockets = [];
});

async function open(opts: FakeAmiServerOptions = {}): Promise<{ server: FakeAmiServer; c: Raw }> {
  const server = await FakeAmiServer.start({ authFailDelayMs: 30, ...opts });
  servers.push(server);
  const socket = connect(server.port, "127.0.0.1");
  sockets.push(socket);
  return { server, c: new Raw(socket) };
}

describe("fake Asterisk: framing and login", () => {
  it("greets with the banner, denies actions before login, and answers Challenge/Login/Ping", async () => {
    const { c } = await open({ reportLogins: false });
    await waitFor(() => c.text.includes("\r\n"), "banner");
    assert.ok(c.text.startsWith("Asterisk Call Manager/9.0.0\r\n"));

    c.send("Action: Ping\r\nActionID: p0\r\n\r\n");
    // Bare LF is accepted too, and header names are case-insensitive.
    c.send("action: Challenge\nactionid: c1\nauthtype: md5\n\n");
    const [denied, challenge] = await c.messages(2);
    assert.equal(denied, "Response: Error\r\nActionID: p0\r\nMessage: Permission denied");
    const m = /^Response: Success\r\nActionID: c1\r\nChallenge: (\d+)$/.exec(challenge!);
    assert.ok(m, challenge);
    const key = createHash("md5")
      .update(m[1]! + "s3cret")
      .digest("hex");
    c.send(
      `Action: Login\r\nActionID: l2\r\nAuthType: MD5\r\nUsername: ips\r\nKey: ${key}\r\nEvents: security\r\n\r\n`,
    );
    c.send("Action: Ping\r\nActionID: p3\r\n\r\n");
    const [, , login, ping] = await c.messages(4);
    assert.equal(login, "Response: Success\r\nActionID: l2\r\nMessage: Authentication accepted");
    assert.match(ping!, /^Response: Success\r\nActionID: p3\r\nPing: Pong\r\nTimestamp: \d+\.\d{6}$/);
  });

  it("answers a wrong secret with Authentication failed after a delay, then closes", async () => {
    const { server, c } = await open({ authFailDelayMs: 200 });
    const t0 = Date.now();
    c.send("Action: Login\r\nActionID: 1\r\nUsername: ips\r\nSecret: nope\r\n\r\n");
    const [failed] = await c.messages(1);
    assert.ok(Date.now() - t0 >= 150, "the failure is delayed like Asterisk's sleep(1)");
    assert.equal(failed, "Response: Error\r\nActionID: 1\r\nMessage: Authentication failed");
    await waitFor(() => c.closed, "the server to close");
    assert.equal(server.failedLogins, 1);
  });

  it("answers an unknown action after login, refuses an overlong line, says Goodbye to Logoff", async () => {
    const { c } = await open({ reportLogins: false });
    c.send("Action: Login\r\nUsername: ips\r\nSecret: s3cret\r\n\r\n");
    c.send("Action: Frobnicate\r\nActionID: 9\r\n\r\n");
    c.send(`Action: Ping\r\nX: ${"a".repeat(1100)}\r\n\r\n`);
    const [, unknown, tooLong] = await c.messages(3);
    assert.equal(
      unknown,
      "Response: Error\r\nActionID: 9\r\nMessage: Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands.",
    );
    assert.equal(tooLong, "Response: Error\r\nMessage: Failed to parse message: line too long");
    // A bare blank line is an empty action to Asterisk (the sample's RequestBadFormat "Action: NONE").
    c.send("\r\nAction: Logoff\r\n\r\n");
    const all = await c.messages(5);
    assert.equal(all[3], "Response: Error\r\nMessage: Missing action in request");
    assert.equal(all[4], "Response: Goodbye\r\nMessage: Thanks for all the fish.");
    await waitFor(() => c.closed, "close after Logoff");
  });
});

describe("fake Asterisk: event masks", () => {
  it("strings_to_mask: digits, on/off, comma lists", () => {
    assert.equal(stringsToMask(""), -1);
    assert.equal(stringsToMask("262144"), SECURITY);
    assert.equal(stringsToMask("off"), 0);
    assert.equal(stringsToMask("no"), 0);
    assert.ok((stringsToMask("on") & SECURITY) === SECURITY);
    assert.equal(stringsToMask("security,system"), SECURITY | EVENT_FLAGS.system!);
    // A space is not stripped, so "security, system" loses system (formats.md §2).
    assert.equal(stringsToMask("security, system"), SECURITY);
  });

  it("delivers security events only when read = security and the mask allow them", async () => {
    const server = await FakeAmiServer.start({
      reportLogins: false,
      users: {
        sec: { secret: "a", read: "security" },
        nosec: { secret: "b", read: "system,call" },
        all: { secret: "c", read: "all" },
      },
    });
    servers.push(server);
    const login = async (user: string, secret: string, events?: string): Promise<Raw> => {
      const s = connect(server.port, "127.0.0.1");
      sockets.push(s);
      const c = new Raw(s);
      c.send(`Action: Login\r\nUsername: ${user}\r\nSecret: ${secret}\r\n${events ? `Events: ${events}\r\n` : ""}\r\n`);
      await c.messages(1);
      return c;
    };
    const sec = await login("sec", "a", "security");
    const nosec = await login("nosec", "b", "security");
    const masked = await login("all", "c", "system");
    const dflt = await login("all", "c");
    assert.equal(server.subscribers.length, 2, "sec, and all with no Events header");
    const event = sampleSecurityEvents()[1]!;
    assert.equal(server.broadcast(event), 2);
    await sec.messages(2);
    await dflt.messages(2);
    assert.ok(sec.text.endsWith(event));
    assert.ok(!nosec.text.includes("Event:"), "no read = security: nothing arrives");
    assert.ok(!masked.text.includes("Event:"));

    // Action: Events turns it on and off.
    masked.send("Action: Events\r\nActionID: e\r\nEventMask: security\r\n\r\n");
    nosec.send("Action: Events\r\nActionID: e\r\nEventMask: security\r\n\r\n");
    const [, on] = await masked.messages(2);
    assert.equal(on, "Response: Success\r\nActionID: e\r\nEvents: On");
    const [, nosecOn] = await nosec.messages(2);
    assert.equal(nosecOn, "Response: Success\r\nActionID: e\r\nEvents: On", "the reply does not reveal readperm");
    assert.equal(server.subscribers.length, 3);
    masked.send("Action: Events\r\nEventMask: off\r\n\r\n");
    const [, , off] = await masked.messages(3);
    assert.equal(off, "Response: Success\r\nEvents: Off");
    assert.equal(server.subscribers.length, 2);
  });

  it("reports logins as security events to subscribers, like Asterisk", async () => {
    const { server, c } = await open({ reportLogins: true });
    c.send("Action: Login\r\nUsername: ips\r\nSecret: s3cret\r\nEvents: security\r\n\r\n");
    const [, ok] = await c.messages(2);
    assert.match(ok!, /^Event: SuccessfulAuth\r\nPrivilege: security,all\r\nEventTV: [^\r]+\+0000\r\n/);
    assert.match(ok!, /\r\nRemoteAddress: IPV4\/TCP\/127\.0\.0\.1\/\d+\r\nUsingPassword: 0\r\n/);
    const intruder = connect(server.port, "127.0.0.1");
    sockets.push(intruder);
    intruder.write("Action: Login\r\nUsername: admin\r\nSecret: admin\r\n\r\n");
    const [, , bad] = await c.messages(3);
    assert.match(bad!, /^Event: InvalidAccountID\r\n[\s\S]*\r\nAccountID: admin\r\n/);
  });
});

describe("fake Asterisk: replay", () => {
  it("replays the recorded sample events byte-exact in small writes", async () => {
    const { c } = await open({
      reportLogins: false,
      onLogin: (s) => s.replay(sampleSecurityEvents().join(""), { chunkSize: 5 }),
    });
    c.send("Action: Login\r\nUsername: ips\r\nSecret: s3cret\r\n\r\n");
    const msgs = await c.messages(1 + sampleSecurityEvents().length);
    assert.deepEqual(
      msgs.slice(1).map((m) => m + "\r\n\r\n"),
      sampleSecurityEvents(),
    );
    const { banner, messages } = loadSampleStream();
    assert.equal(banner, "Asterisk Call Manager/9.0.0");
    assert.equal(messages.length, 27);
  });

  it("drops a client that stops reading, as Asterisk's writetimeout does", async () => {
    const pool = sampleSecurityEvents();
    const { server, c } = await open({
      reportLogins: false,
      writeTimeoutMs: 100,
      onLogin: (s) => s.blast(pool, 200_000, { batchBytes: 262_144 }),
    });
    c.send("Action: Login\r\nUsername: ips\r\nSecret: s3cret\r\n\r\n");
    await waitFor(() => c.text.includes("Authentication accepted"), "login");
    c.socket.pause();
    await waitFor(() => server.writeTimeouts === 1, "the write timeout", 20_000);
    await waitFor(() => server.sessions[0]!.closed, "the session to close");
  });
});
