/**
 * A small AMI server that behaves like Asterisk's main/manager.c where sipwarden can tell the
 * difference (formats.md §2), for tests and the benchmark. Asterisk is not packaged in Debian
 * 12, so this stands in for it. It listens on 127.0.0.1 only.
 *
 * What it does like Asterisk:
 * - banner `Asterisk Call Manager/<AMI version>\r\n` on connect (never, in `dead` mode);
 * - actions split on `\r\n` or bare `\n`, a blank line ends one, header names and action
 *   names compared case-insensitively, lines over 1024 bytes refused;
 * - Challenge (AuthType MD5) and Login, plain or MD5 (`md5hex(challenge ‖ secret)`), with
 *   `Authentication accepted`, or `Authentication failed` after a delay (1 s in Asterisk)
 *   and then closing the connection;
 * - `Permission denied` for any other action before login; Ping → Pong; Events and the
 *   Login `Events:` mask (`strings_to_mask()`: digits, on/off, a comma list), delivered
 *   only when `readperm & mask` covers the class; Logoff → Goodbye;
 * - security events for logins (SuccessfulAuth, InvalidAccountID, InvalidPassword,
 *   ChallengeResponseFailed) to every subscribed session, as Asterisk reports them;
 * - `writetimeout`: a session whose socket stays unwritable longer than `writeTimeoutMs`
 *   (100 ms in Asterisk) is dropped, so a client that stops reading is caught.
 *
 * Its line parser is written separately from src/sources/ami-framing.ts on purpose, so a bug
 * there is not mirrored here.
 */
import { createHash, randomInt } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { frame, SECURITY, securityEvent, stringsToMask } from "./ami-samples.js";

export {
  EVENT_FLAGS,
  frame,
  loadSampleStream,
  SECURITY,
  sampleSecurityEvents,
  securityEvent,
  stringsToMask,
} from "./ami-samples.js";

export interface FakeAmiUser {
  secret: string;
  /** manager.conf `read =`, e.g. "security" or "system,call"; default "all". */
  read?: string;
}

export interface FakeAmiServerOptions {
  /** Default: `ips` with secret `s3cret` and `read = security`. */
  users?: Record<string, FakeAmiUser>;
  /** AMI_VERSION (9.0.0 is Asterisk 20). */
  version?: string;
  /** Delay before `Authentication failed` (Asterisk: sleep(1)). */
  authFailDelayMs?: number;
  /** `dead`: accept TCP and never send the banner. */
  mode?: "normal" | "dead";
  bannerDelayMs?: number;
  /** Drop a session whose socket stays unwritable this long (Asterisk writetimeout 100 ms); 0: never. */
  writeTimeoutMs?: number;
  /** Report logins as security events to subscribed sessions. Default true. */
  reportLogins?: boolean;
  /** Actions (lower case) to swallow without a reply, like a hung Asterisk, e.g. ["ping"]. */
  ignoreActions?: string[];
  /** Called after each successful login. */
  onLogin?(session: FakeAmiSession): void | Promise<void>;
}

type Headers = Map<string, string>;

function isoNow(): string {
  return new Date().toISOString().replace("Z", "+0000");
}

export class FakeAmiSession {
  username = "";
  authenticated = false;
  readperm = 0;
  sendEvents = -1;
  challenge = "";
  /** Every action received, header names lower-cased. */
  readonly actions: Record<string, string>[] = [];
  private inbuf = "";
  private writeTimer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    private readonly server: FakeAmiServer,
  ) {
    socket.on("close", () => {
      this.closed = true;
      clearTimeout(this.writeTimer);
    });
    socket.on("error", () => {});
  }

  get remote(): string {
    return `IPV4/TCP/${this.socket.remoteAddress?.replace(/^::ffff:/, "")}/${this.socket.remotePort}`;
  }

  get local(): string {
    return `IPV4/TCP/${this.socket.localAddress?.replace(/^::ffff:/, "")}/${this.socket.localPort}`;
  }

  /** Would `process_events()` deliver a security event to this session? */
  get wantsSecurity(): boolean {
    return this.authenticated && (this.readperm & SECURITY) === SECURITY && (this.sendEvents & SECURITY) === SECURITY;
  }

  /**
   * Writes bytes, resolving once Node has handed them to the kernel. A socket that stays
   * unwritable for writeTimeoutMs is closed, as Asterisk does.
   */
  write(data: string | Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.resolve();
    if (this.socket.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.server.writeTimeoutMs;
      const onDrain = (): void => {
        clearTimeout(this.writeTimer);
        this.socket.off("close", onDrain);
        resolve();
      };
      this.socket.once("drain", onDrain);
      this.socket.once("close", onDrain);
      if (t > 0) {
        clearTimeout(this.writeTimer);
        this.writeTimer = setTimeout(() => {
          this.server.writeTimeouts++;
          this.socket.destroy();
        }, t);
      }
    });
  }

  /**
   * Sends a recorded stream, cut into `chunkSize`-byte writes (default: one write), waiting
   * `delayMs` between writes.
   */
  async replay(stream: string | Buffer, opts: { chunkSize?: number; delayMs?: number } = {}): Promise<void> {
    const buf = typeof stream === "string" ? Buffer.from(stream) : stream;
    const size = opts.chunkSize ?? buf.length;
    for (let i = 0; i < buf.length && !this.closed; i += size) {
      await this.write(buf.subarray(i, i + size));
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    }
  }

  /**
   * Sends `count` events cycling through `pool`, in writes of about `batchBytes`, waiting for
   * each write to drain (as Asterisk blocks in fwrite), paced to `rate` events/s if given.
   */
  async blast(
    pool: readonly string[],
    count: number,
    opts: { rate?: number; batchBytes?: number } = {},
  ): Promise<void> {
    const batchBytes = opts.batchBytes ?? 65_536;
    const start = performance.now();
    let sent = 0;
    let i = 0;
    while (sent < count && !this.closed) {
      let batch = "";
      let n = 0;
      while (sent + n < count && batch.length < batchBytes) {
        batch += pool[i]!;
        i = (i + 1) % pool.length;
        n++;
      }
      await this.write(batch);
      sent += n;
      if (opts.rate) {
        const due = start + (sent / opts.rate) * 1000;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Client bytes in, as do_message() reads them: line by line (CRLF or LF), a blank line ends
   * the action, even an empty one ("Missing action in request"); a line over 1024 bytes spoils
   * its action, which is answered "Failed to parse message: line too long" at its blank line.
   */
  onData(chunk: Buffer): void {
    this.inbuf += chunk.toString("latin1");
    let nl = this.inbuf.indexOf("\n");
    while (nl >= 0) {
      const line = this.inbuf.slice(0, nl).replace(/\r$/, "");
      this.inbuf = this.inbuf.slice(nl + 1);
      this.line(line);
      nl = this.inbuf.indexOf("\n");
    }
    if (this.inbuf.length > 1024) {
      this.tooLong = true;
      this.inbuf = "";
    }
  }

  private lines: string[] = [];
  private tooLong = false;

  private line(line: string): void {
    if (line.length > 1024) this.tooLong = true;
    if (line !== "") {
      this.lines.push(line);
      return;
    }
    const lines = this.lines;
    this.lines = [];
    if (this.tooLong) {
      this.tooLong = false;
      void this.respond(undefined, "Error", [["Message", "Failed to parse message: line too long"]]);
      return;
    }
    const h: Headers = new Map();
    for (const l of lines) {
      const i = l.indexOf(":");
      if (i < 0) continue;
      const k = l.slice(0, i).trim().toLowerCase();
      if (!h.has(k)) h.set(k, l.slice(i + 1).trim());
    }
    this.actions.push(Object.fromEntries(h));
    void this.server.handle(this, h);
  }

  respond(h: Headers | undefined, response: string, extra: [string, string][] = []): Promise<void> {
    const id = h?.get("actionid");
    return this.write(
      frame([["Response", response], ...(id !== undefined ? [["ActionID", id] as [string, string]] : []), ...extra]),
    );
  }
}

export class FakeAmiServer {
  readonly sessions: FakeAmiSession[] = [];
  /** TCP connections accepted. */
  connections = 0;
  logins = 0;
  failedLogins = 0;
  writeTimeouts = 0;
  readonly users: Record<string, FakeAmiUser>;
  readonly writeTimeoutMs: number;
  private server: Server | null = null;
  port = 0;
  readonly host = "127.0.0.1";

  constructor(readonly opts: FakeAmiServerOptions = {}) {
    this.users = opts.users ?? { ips: { secret: "s3cret", read: "security" } };
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 100;
  }

  static async start(opts: FakeAmiServerOptions = {}): Promise<FakeAmiServer> {
    const s = new FakeAmiServer(opts);
    await s.listen();
    return s;
  }

  /** Listens on 127.0.0.1, on `port` (0: an ephemeral one). */
  listen(port = 0): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, this.host, () => {
        const a = server.address();
        this.port = typeof a === "object" && a ? a.port : 0;
        resolve();
      });
    });
  }

  /** Sessions that would receive a security event now. */
  get subscribers(): FakeAmiSession[] {
    return this.sessions.filter((s) => !s.closed && s.wantsSecurity);
  }

  /** Sends an event (already framed) to every subscribed session; returns how many got it. */
  broadcast(event: string): number {
    const subs = this.subscribers;
    for (const s of subs) void s.write(event);
    return subs.length;
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(socket: Socket): void {
    this.connections++;
    socket.setNoDelay(true);
    const session = new FakeAmiSession(this.sessions.length + 1, socket, this);
    this.sessions.push(session);
    socket.on("data", (c: Buffer) => session.onData(c));
    if (this.opts.mode === "dead") return;
    const banner = (): void => void session.write(`Asterisk Call Manager/${this.opts.version ?? "9.0.0"}\r\n`);
    if (this.opts.bannerDelayMs) setTimeout(banner, this.opts.bannerDelayMs);
    else banner();
  }

  private reportLogin(s: FakeAmiSession, name: string, account: string, extra: [string, string][]): void {
    if (this.opts.reportLogins === false) return;
    this.broadcast(
      securityEvent(name, [
        ["EventTV", isoNow()],
        ["Severity", name === "SuccessfulAuth" ? "Informational" : "Error"],
        ["Service", "AMI"],
        ["EventVersion", name === "InvalidPassword" ? "2" : "1"],
        ["AccountID", account],
        ["SessionID", `0x${(0x7f1c38000000 + s.id * 0x1000).toString(16)}`],
        ["LocalAddress", s.local],
        ["RemoteAddress", s.remote],
        ...extra,
        ["SessionTV", s.authenticated ? isoNow() : "1970-01-01T00:00:00.000+0000"],
      ]),
    );
  }

  /** process_message(): one action from one session. */
  async handle(s: FakeAmiSession, h: Headers): Promise<void> {
    const action = (h.get("action") ?? "").toLowerCase();
    if (this.opts.ignoreActions?.includes(action)) return;
    if (action === "") return s.respond(h, "Error", [["Message", "Missing action in request"]]);
    if (!s.authenticated && action !== "login" && action !== "logoff" && action !== "challenge")
      return s.respond(h, "Error", [["Message", "Permission denied"]]);
    switch (action) {
      case "challenge": {
        if ((h.get("authtype") ?? "").toLowerCase() !== "md5")
          return s.respond(h, "Error", [["Message", "Must specify AuthType"]]);
        if (!s.challenge) s.challenge = String(randomInt(1, 2 ** 31 - 1));
        return s.respond(h, "Success", [["Challenge", s.challenge]]);
      }
      case "login":
        return this.login(s, h);
      case "ping": {
        const t = Date.now();
        return s.respond(h, "Success", [
          ["Ping", "Pong"],
          ["Timestamp", `${Math.floor(t / 1000)}.${String((t % 1000) * 1000).padStart(6, "0")}`],
        ]);
      }
      case "events": {
        const mask = stringsToMask(h.get("eventmask") ?? "");
        if (mask < 0) return s.respond(h, "Error", [["Message", "Invalid event mask"]]);
        s.sendEvents = mask;
        return s.respond(h, "Success", [["Events", mask > 0 ? "On" : "Off"]]);
      }
      case "logoff":
        await s.respond(h, "Goodbye", [["Message", "Thanks for all the fish."]]);
        s.socket.end();
        return;
      default:
        return s.respond(h, "Error", [
          [
            "Message",
            `Invalid/unknown command: ${h.get("action")}. Use Action: ListCommands to show available commands.`,
          ],
        ]);
    }
  }

  private async login(s: FakeAmiSession, h: Headers): Promise<void> {
    if (s.authenticated) return s.respond(h, "Success", [["Message", "Already authenticated"]]);
    const name = h.get("username") ?? "";
    const user = Object.hasOwn(this.users, name) ? this.users[name] : undefined;
    let ok = false;
    if (user) {
      if ((h.get("authtype") ?? "").toLowerCase() === "md5") {
        const want = createHash("md5")
          .update(s.challenge + user.secret)
          .digest("hex");
        ok = s.challenge !== "" && (h.get("key") ?? "").toLowerCase() === want;
        if (!ok)
          this.reportLogin(s, "ChallengeResponseFailed", "", [
            ["Challenge", s.challenge],
            ["Response", h.get("key") ?? ""],
            ["ExpectedResponse", want],
          ]);
      } else {
        ok = h.get("secret") === user.secret;
        if (!ok) this.reportLogin(s, "InvalidPassword", name, []);
      }
    } else {
      this.reportLogin(s, "InvalidAccountID", name, []);
    }
    if (!ok || !user) {
      this.failedLogins++;
      await new Promise((r) => setTimeout(r, this.opts.authFailDelayMs ?? 1000));
      await s.respond(h, "Error", [["Message", "Authentication failed"]]);
      s.socket.end();
      return;
    }
    s.username = name;
    s.authenticated = true;
    s.readperm = stringsToMask(user.read ?? "all");
    const mask = stringsToMask(h.get("events") ?? "");
    if (mask >= 0) s.sendEvents = mask;
    this.logins++;
    await s.respond(h, "Success", [["Message", "Authentication accepted"]]);
    this.reportLogin(s, "SuccessfulAuth", name, [["UsingPassword", "0"]]);
    await this.opts.onLogin?.(s);
  }
}

/** Polls `cond` every few ms until it holds, or throws after `timeoutMs` with `what`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
