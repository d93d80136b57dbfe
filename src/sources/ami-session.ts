/**
 * One AMI connection (formats.md §2): connect, read the banner, log in (MD5 challenge or
 * plain), ask for the `security` class only, ping, and hand every message to the caller until
 * the connection ends. Reconnecting is the caller's job (see ami.ts).
 *
 * The socket is never paused: Asterisk drops a client whose socket stays unwritable for
 * `writetimeout` (100 ms by default), so every chunk is framed and handed on synchronously.
 */
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import { SipwardenError } from "../core/errors.js";
import { AmiFramer, type AmiMessage, encodeAction, field } from "./ami-framing.js";

/** What a session needs to know; all durations in ms. */
export interface AmiSessionOptions {
  host: string;
  port: number;
  username: string;
  secret: string;
  auth: "md5" | "plain";
  connectTimeout: number;
  bannerTimeout: number;
  /** For Challenge, Login and Ping replies. Asterisk waits 1 s before it says "Authentication failed". */
  responseTimeout: number;
  pingInterval: number;
  /** Called once per connection when the TCP handshake completes. */
  onConnected(): void;
  onBanner(version: string): void;
  onLoggedIn(): void;
  /** Every `Event:` message, in order. Runs inside the socket's data handler: keep it quick. */
  onEvent(message: AmiMessage): void;
  /** Bytes read, for stats. */
  onBytes(n: number): void;
}

/** How a session ended. `error` is null when the signal aborted it. */
export interface AmiSessionEnd {
  error: SipwardenError | null;
  loggedIn: boolean;
  /** The connection closed in the middle of a message, which was dropped. */
  cutMidMessage: boolean;
}

const BANNER = /^Asterisk Call Manager\/(\S+)$/;

interface Pending {
  resolve(m: AmiMessage): void;
  reject(e: SipwardenError): void;
  timer: NodeJS.Timeout;
}

let actionSeq = 0;

function where(o: { host: string; port: number }): string {
  return o.host.includes(":") ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
}

/** Turns a socket error into the message an operator needs. */
function connectError(err: NodeJS.ErrnoException, addr: string, connected: boolean): SipwardenError {
  const c = { cause: err };
  switch (err.code) {
    case "ECONNREFUSED":
      return new SipwardenError(
        "AMI_CONNECT",
        `connection refused by ${addr}: is manager.conf enabled=yes and bindaddr set?`,
        c,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new SipwardenError("AMI_CONNECT", `cannot resolve the AMI host of ${addr}`, c);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new SipwardenError("AMI_CONNECT", `${addr} is unreachable (${err.code})`, c);
    case "ECONNRESET":
    case "EPIPE":
      return new SipwardenError(
        "AMI_CONNECT",
        connected ? `connection to ${addr} reset` : `connection reset by ${addr}`,
        c,
      );
    default:
      return new SipwardenError("AMI_CONNECT", `AMI connection to ${addr} failed: ${err.message}`, c);
  }
}

/** Runs one connection to its end. Never rejects: the outcome says why it ended. */
export function runAmiSession(o: AmiSessionOptions, signal: AbortSignal): Promise<AmiSessionEnd> {
  const addr = where(o);
  const pending = new Map<string, Pending>();
  let socket: Socket | null = null;
  let stage: "connecting" | "banner" | "login" | "ready" = "connecting";
  let loggedIn = false;
  let done = false;
  let stageTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let bannerSeen: ((v: string) => void) | null = null;
  let framer: AmiFramer | null = null;

  return new Promise<AmiSessionEnd>((resolveEnd) => {
    const finish = (error: SipwardenError | null): void => {
      if (done) return;
      done = true;
      clearTimeout(stageTimer);
      clearTimeout(pingTimer);
      signal.removeEventListener("abort", onAbort);
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(error ?? new SipwardenError("AMI_CONNECT", "stopped"));
      }
      pending.clear();
      const cutMidMessage = framer?.midMessage ?? false;
      if (socket) {
        const s = socket;
        if (error === null && loggedIn && s.writable) {
          // A polite Logoff on shutdown, so Asterisk logs "logged off" rather than a dropped client.
          s.end(encodeAction([["Action", "Logoff"]]));
          setTimeout(() => s.destroy(), 1000).unref();
        } else {
          s.destroy();
        }
      }
      resolveEnd({ error, loggedIn, cutMidMessage });
    };
    const onAbort = (): void => finish(null);
    if (signal.aborted) {
      finish(null);
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });

    const arm = (ms: number, make: () => SipwardenError): void => {
      clearTimeout(stageTimer);
      stageTimer = setTimeout(() => finish(make()), ms);
    };

    const send = (fields: [string, string][], timeout: number): Promise<AmiMessage> =>
      new Promise<AmiMessage>((resolve, reject) => {
        if (done || !socket) {
          reject(new SipwardenError("AMI_CONNECT", `not connected to ${addr}`));
          return;
        }
        const id = `sipwarden-${process.pid}-${++actionSeq}`;
        const action = fields[0]?.[1] ?? "?";
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new SipwardenError("AMI_PROTOCOL", `no reply to ${action} from ${addr} within ${timeout} ms`));
        }, timeout);
        pending.set(id, { resolve, reject, timer });
        socket.write(encodeAction([fields[0]!, ["ActionID", id], ...fields.slice(1)]));
      });

    const onMessage = (m: AmiMessage): void => {
      const kind = m.kind;
      if (kind === "Event") {
        o.onEvent(m);
        return;
      }
      if (kind === "Response") {
        const id = field(m, "ActionID");
        const p = id === undefined ? undefined : pending.get(id);
        if (p) {
          pending.delete(id!);
          clearTimeout(p.timer);
          p.resolve(m);
        }
      }
    };

    framer = new AmiFramer({
      onMessage,
      onBanner: (b) => bannerSeen?.(b),
    });

    const s = connect({ host: o.host, port: o.port });
    socket = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, 60_000);
    arm(
      o.connectTimeout,
      () =>
        new SipwardenError(
          "AMI_CONNECT",
          `no answer from ${addr} within ${o.connectTimeout} ms: wrong host, or a firewall drops the packets?`,
        ),
    );
    s.on("error", (err: NodeJS.ErrnoException) => finish(connectError(err, addr, stage !== "connecting")));
    s.on("close", () => setImmediate(closed));
    // Deferred a turn: a login reply that came with the close settles first and gives the better reason.
    const closed = (): void => {
      if (done) return;
      if (stage === "banner")
        finish(
          new SipwardenError(
            "AMI_CONNECT",
            `${addr} closed the connection before its banner: too many unauthenticated sessions (authlimit)?`,
          ),
        );
      else if (stage === "login")
        finish(new SipwardenError("AMI_CONNECT", `${addr} closed the connection during login`));
      else finish(new SipwardenError("AMI_CONNECT", `${addr} closed the connection`));
    };
    s.on("data", (chunk: Buffer) => {
      o.onBytes(chunk.length);
      try {
        framer!.push(chunk);
      } catch (err) {
        if (err instanceof SipwardenError) finish(err);
        else finish(new SipwardenError("SOURCE_FAILED", `AMI event handling failed: ${String(err)}`, { cause: err }));
      }
    });

    s.once("connect", () => {
      if (done) return;
      stage = "banner";
      o.onConnected();
      arm(
        o.bannerTimeout,
        () =>
          new SipwardenError(
            "AMI_PROTOCOL",
            `${addr} accepted the connection but sent no AMI banner within ${o.bannerTimeout} ms: is it an Asterisk manager port?`,
          ),
      );
      new Promise<string>((resolve) => {
        bannerSeen = resolve;
      })
        .then(async (banner) => {
          bannerSeen = null;
          const m = BANNER.exec(banner);
          if (!m)
            throw new SipwardenError(
              "AMI_PROTOCOL",
              `${addr} is not an Asterisk manager port: it greeted with ${JSON.stringify(banner.slice(0, 80))}`,
            );
          o.onBanner(m[1]!);
          stage = "login";
          clearTimeout(stageTimer);
          await login();
          stage = "ready";
          loggedIn = true;
          o.onLoggedIn();
          schedulePing();
        })
        .catch((err: unknown) => {
          if (err instanceof SipwardenError) finish(err);
          else finish(new SipwardenError("AMI_PROTOCOL", String(err), { cause: err }));
        });
    });

    const login = async (): Promise<void> => {
      const fields: [string, string][] = [["Action", "Login"]];
      if (o.auth === "md5") {
        const c = await send(
          [
            ["Action", "Challenge"],
            ["AuthType", "MD5"],
          ],
          o.responseTimeout,
        );
        const challenge = field(c, "Challenge");
        if (field(c, "Response") !== "Success" || challenge === undefined)
          throw new SipwardenError(
            "AMI_PROTOCOL",
            `${addr} refused the MD5 challenge (${field(c, "Message") ?? "no Challenge in the reply"}): try auth: plain`,
          );
        const key = createHash("md5")
          .update(challenge + o.secret)
          .digest("hex");
        fields.push(["AuthType", "MD5"], ["Username", o.username], ["Key", key]);
      } else {
        fields.push(["Username", o.username], ["Secret", o.secret]);
      }
      fields.push(["Events", "security"]);
      const r = await send(fields, o.responseTimeout);
      if (field(r, "Response") === "Success") return;
      const msg = field(r, "Message") ?? "";
      if (/already in use/i.test(msg))
        throw new SipwardenError(
          "AMI_AUTH",
          `Asterisk refused a second login for user '${o.username}' (allowmultiplelogin=no in manager.conf)`,
        );
      throw new SipwardenError(
        "AMI_AUTH",
        `Asterisk rejected the login for user '${o.username}': wrong secret, or the user does not exist in manager.conf` +
          ` (or its permit/deny excludes this host)` +
          (msg && msg !== "Authentication failed" ? `; it said ${JSON.stringify(msg)}` : ""),
      );
    };

    const schedulePing = (): void => {
      pingTimer = setTimeout(() => {
        send([["Action", "Ping"]], o.responseTimeout).then(schedulePing, (err: unknown) => {
          if (done) return;
          finish(
            new SipwardenError(
              "AMI_PROTOCOL",
              `${addr} did not answer a keepalive Ping within ${o.responseTimeout} ms: connection presumed dead`,
              { cause: err },
            ),
          );
        });
      }, o.pingInterval);
    };
  });
}
