/**
 * The lab's syslog daemon stand-in, run inside the PBX namespace:
 *
 *   node --import tsx test/e2e/tools/syslog-sink.ts <address> <port> <file> <hostname>
 *
 * Kamailio (log_custom, `log_engine_type="udp"`) sends each log record as one datagram,
 * `(<pid>) LEVEL: <message>\n`. This writes every record as ONE line the way Debian 12's rsyslog
 * writes /var/log/syslog (RSYSLOG_FileFormat, formats.md §4.1):
 *
 *   2026-11-21T20:42:57.195000+00:00 pbx /usr/sbin/kamailio[2146]: NOTICE: {…} <script>: IPS: …
 *
 * with rsyslog's defaults for control characters: one trailing LF dropped, every other byte below
 * 0x20 (and 0x7f) written as `#` and three octal digits, so a line break inside a record (an echoed
 * SIP request) can never start a new line in the file. Prints "ready" once it listens.
 */
import { createSocket } from "node:dgram";
import { appendFileSync } from "node:fs";

const HEAD = /^\((\d{1,10})\) /;

/** rsyslog's $EscapeControlCharactersOnReceive: control bytes as `#ooo`. */
function escapeControl(b: Buffer): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c < 0x20 || c === 0x7f) {
      out += b.toString("utf8", start, i) + "#" + c.toString(8).padStart(3, "0");
      start = i + 1;
    }
  }
  return out + b.toString("utf8", start);
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000+00:00");
}

function main(): void {
  const [address, port, file, host] = process.argv.slice(2);
  if (!address || !port || !file || !host) throw new Error("usage: syslog-sink.ts <address> <port> <file> <hostname>");
  const sock = createSocket("udp4");
  sock.on("message", (m) => {
    let body = m;
    if (body.at(-1) === 0x0a) body = body.subarray(0, -1);
    const head = HEAD.exec(body.subarray(0, 16).toString("latin1"));
    const pid = head ? head[1] : "0";
    if (head) body = body.subarray(head[0].length);
    appendFileSync(file, `${stamp(new Date())} ${host} /usr/sbin/kamailio[${pid}]: ${escapeControl(body)}\n`);
  });
  sock.bind(Number(port), address, () => process.stdout.write("ready\n"));
  const stop = () => sock.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
