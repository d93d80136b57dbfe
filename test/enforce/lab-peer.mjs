// A bounded traffic peer for the namespace lab, driven over stdin with one command per line;
// each command answers with one JSON line on stdout.
//
//   node lab-peer.mjs serve <port>
//     Counts UDP datagrams, TCP connections and TCP lines per source address on <port> (both
//     families) and answers every datagram, so that conntrack sees an established flow.
//     Commands: `stats`.
//   node lab-peer.mjs client <server-ip> <port> [bind-ip]
//     One UDP socket (one flow, fixed source port) and at most one TCP connection.
//     Commands: `udp N`, `connect TIMEOUT_MS`, `tcp N`, `close`, `replies`.
//
// Bounds: at most 2,000 packets sent and 5 minutes of life, whatever the commands say.
import { createSocket } from "node:dgram";
import { createConnection, createServer } from "node:net";
import { createInterface } from "node:readline";

const MAX_PACKETS = 2000;
const MAX_LIFE_MS = 300_000;
setTimeout(() => process.exit(3), MAX_LIFE_MS).unref();

const [mode, a1, a2, a3] = process.argv.slice(2);
const reply = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const plain = (ip) => (ip?.startsWith("::ffff:") ? ip.slice(7) : ip);
const commands = createInterface({ input: process.stdin });
commands.on("close", () => process.exit(0));

if (mode === "serve") {
  const port = Number(a1);
  const udp = {};
  const tcp = {};
  const conns = {};
  const bump = (m, k, n = 1) => {
    m[k] = (m[k] ?? 0) + n;
  };
  const u = createSocket({ type: "udp6", ipv6Only: false });
  u.on("message", (_msg, rinfo) => {
    bump(udp, plain(rinfo.address));
    u.send("ok", rinfo.port, rinfo.address);
  });
  const t = createServer((s) => {
    const ip = plain(s.remoteAddress);
    bump(conns, ip);
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      bump(tcp, ip, lines.length);
    });
    s.on("error", () => {});
  });
  let ready = 0;
  const up = () => {
    if (++ready === 2) reply({ ready: true });
  };
  u.bind(port, "::", up);
  t.listen(port, "::", up);
  commands.on("line", (line) => {
    if (line.trim() === "stats") reply({ udp, tcp, conns });
  });
} else if (mode === "client") {
  const host = a1;
  const port = Number(a2);
  const bind = a3;
  let sent = 0;
  let replies = 0;
  const family = host.includes(":") ? "udp6" : "udp4";
  const u = createSocket(family);
  u.on("message", () => replies++);
  u.bind({ port: 0, address: bind }, () => reply({ ready: true, port: u.address().port }));
  let sock = null;
  const budget = (n) => {
    const ok = Math.max(0, Math.min(n, MAX_PACKETS - sent));
    sent += ok;
    return ok;
  };
  commands.on("line", (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    const n = Number(arg ?? 1);
    if (cmd === "udp") {
      const k = budget(n);
      let done = 0;
      if (k === 0) reply({ sent: 0 });
      for (let i = 0; i < k; i++)
        u.send(`probe ${i}`, port, host, () => {
          if (++done === k) reply({ sent: k });
        });
    } else if (cmd === "connect") {
      sock?.destroy();
      const s = createConnection({ host, port, localAddress: bind, timeout: n });
      sock = s;
      let answered = false;
      const once = (o) => {
        if (!answered) {
          answered = true;
          reply(o);
        }
      };
      s.on("connect", () => {
        s.setTimeout(0);
        once({ connected: true });
      });
      s.on("timeout", () => {
        s.destroy();
        once({ connected: false, error: "timeout" });
      });
      s.on("error", (e) => once({ connected: false, error: e.code }));
    } else if (cmd === "tcp") {
      const k = budget(n);
      if (!sock || sock.destroyed) reply({ sent: 0, error: "not connected" });
      else {
        sock.write("line\n".repeat(k), () => reply({ sent: k }));
      }
    } else if (cmd === "close") {
      sock?.destroy();
      sock = null;
      reply({ closed: true });
    } else if (cmd === "replies") reply({ replies });
    else reply({ error: `unknown command ${cmd}` });
  });
} else {
  process.stderr.write("usage: lab-peer.mjs serve <port> | client <ip> <port> [bind]\n");
  process.exit(64);
}
