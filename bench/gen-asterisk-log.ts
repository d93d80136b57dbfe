/**
 * Reproducible Asterisk `full` log for benchmarks: `attackShare` of the lines are attack lines
 * in every format sipwarden parses (pjsip, chan_sip, session, security log, manager, iax2),
 * from many attackers (v4 and v6 documentation ranges); the rest are ordinary call-processing
 * lines. The same seed always gives the same bytes.
 *
 *   node --import tsx bench/gen-asterisk-log.ts OUT [LINES] [SEED]
 */
import { createWriteStream } from "node:fs";

/** mulberry32: tiny, fast, good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GeneratedLog {
  lines: number;
  attackLines: number;
  /** Attack lines per format id, so a benchmark can tell which ones another tool missed. */
  byFormat: Record<string, number>;
  /** Attack lines per attacker address. */
  byAddress: Map<string, number>;
}

function attackerList(n: number): string[] {
  const out: string[] = [];
  for (let i = 1; i <= 254 && out.length < n; i++) out.push(`198.51.100.${i}`);
  for (let i = 1; i <= 254 && out.length < n; i++) out.push(`203.0.113.${i}`);
  for (let i = 1; out.length < n; i++) out.push(`2001:db8:${(i >> 8).toString(16)}::${(i & 0xff).toString(16)}`);
  return out;
}

const pad2 = (n: number) => (n < 10 ? "0" + n : String(n));
const hex8 = (r: () => number) =>
  Math.floor(r() * 0xffffffff)
    .toString(16)
    .padStart(8, "0");

type Fmt = (ip: string, port: number, ext: string, r: () => number, iso: string) => string;

/** Attack message formats (after the `[date] LEVEL[lwp] file: ` prefix unless they carry their own). */
const ATTACKS: [string, Fmt][] = [
  [
    "pjsip.no_endpoint",
    (ip, port, ext, r) =>
      `NOTICE[${2100 + Math.floor(r() * 99)}] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '"${ext}" <sip:${ext}@203.0.113.10>' failed for '${ip.includes(":") ? `[${ip}]` : ip}:${port}' (callid: ${hex8(r)}${hex8(r)}) - No matching endpoint found`,
  ],
  [
    "pjsip.auth",
    (ip, port, ext, r) =>
      `NOTICE[${2100 + Math.floor(r() * 99)}] res_pjsip/pjsip_distributor.c: Request 'INVITE' from '<sip:${ext}@203.0.113.10>' failed for '${ip.includes(":") ? `[${ip}]` : ip}:${port}' (callid: ${hex8(r)}-${hex8(r)}) - Failed to authenticate`,
  ],
  [
    "pjsip.auth_tries",
    (ip, port, ext, r) =>
      `NOTICE[${2100 + Math.floor(r() * 99)}] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '"${ext}" <sip:${ext}@203.0.113.10>' failed for '${ip.includes(":") ? `[${ip}]` : ip}:${port}' (callid: ${hex8(r)}) - No matching endpoint found after 5 tries in 2.031 ms`,
  ],
  [
    "session.no_extension",
    (ip, port, ext, r) =>
      `NOTICE[${2100 + Math.floor(r() * 99)}][C-${hex8(r)}] res_pjsip_session.c:  ${ext}: Call (UDP:${ip.includes(":") ? `[${ip}]` : ip}:${port}) to extension '9011441234567${ext}' rejected because extension not found in context 'from-external'.`,
  ],
  [
    "chansip.register",
    (ip, port, ext) =>
      `NOTICE[${3100}] chan_sip.c: Registration from '"${ext}"<sip:${ext}@203.0.113.10:5060>' failed for '${ip.includes(":") ? `[${ip}]` : ip}:${port}' - Wrong password`,
  ],
  [
    "chansip.no_extension",
    (ip, port, ext, r) =>
      `NOTICE[${3100}][C-${hex8(r)}] chan_sip.c: Call from '' (${ip.includes(":") ? `[${ip}]` : ip}:${port}) to extension '00972${ext}' rejected because extension not found in context 'default'.`,
  ],
  [
    "security.invalid_password",
    (ip, port, ext, r, iso) =>
      `SECURITY[1843] res_security_log.c: SecurityEvent="InvalidPassword",EventTV="${iso}",Severity="Error",Service="SIP",EventVersion="2",AccountID="${ext}",SessionID="0x7f3b${hex8(r)}",LocalAddress="IPV4/UDP/203.0.113.10/5060",RemoteAddress="IPV${ip.includes(":") ? 6 : 4}/UDP/${ip}/${port}",Challenge="${hex8(r)}",ReceivedChallenge="${hex8(r)}",ReceivedHash="b9fd7b8fde27390bae3742b844d8bca9"`,
  ],
  [
    "security.chal_resp",
    (ip, port, ext, r, iso) =>
      `SECURITY[1843] res_security_log.c: SecurityEvent="ChallengeResponseFailed",EventTV="${iso}",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="${ext}",SessionID="${hex8(r)}-0001-4c1e",LocalAddress="IPV4/UDP/203.0.113.10/5060",RemoteAddress="IPV${ip.includes(":") ? 6 : 4}/UDP/${ip}/${port}",Challenge="1715682075/d6bf01c1ea5d09e2770cb8b16cf39655",Response="00333cb681383e5bbf047c6e43635c68",ExpectedResponse=""`,
  ],
  ["manager.auth", (ip, _port, ext) => `NOTICE[3288] manager.c: ${ip} failed to authenticate as '${ext}'`],
  [
    "iax2.auth",
    (ip, port, ext) =>
      `NOTICE[2911] chan_iax2.c: Host ${ip.includes(":") ? `[${ip}]` : ip}:${port} failed to authenticate as ${ext}`,
  ],
];

/** Ordinary lines: dialplan execution, channel setup, RTP, registrations of good phones. */
const ORDINARY: ((r: () => number) => string)[] = [
  (r) =>
    `VERBOSE[${4000 + Math.floor(r() * 50)}][C-${hex8(r)}] pbx.c: Executing [${100 + Math.floor(r() * 80)}@from-internal:1] Dial("PJSIP/1${Math.floor(r() * 900 + 100)}-0000${hex8(r).slice(0, 4)}", "PJSIP/2${Math.floor(r() * 900 + 100)},30,tT") in new stack`,
  (r) =>
    `VERBOSE[${4000 + Math.floor(r() * 50)}][C-${hex8(r)}] app_dial.c: Called PJSIP/2${Math.floor(r() * 900 + 100)}`,
  (r) =>
    `VERBOSE[${4000 + Math.floor(r() * 50)}][C-${hex8(r)}] app_dial.c: PJSIP/2${Math.floor(r() * 900 + 100)}-00000${Math.floor(r() * 999)} is ringing`,
  (r) =>
    `DEBUG[${4000 + Math.floor(r() * 50)}] res_rtp_asterisk.c: Channel 'PJSIP/1${Math.floor(r() * 900 + 100)}' was setup for RTP with remote address 192.0.2.${1 + Math.floor(r() * 250)}:${10000 + Math.floor(r() * 10000)}`,
  (r) =>
    `VERBOSE[${4000 + Math.floor(r() * 50)}] res_pjsip_registrar.c: Added contact 'sip:1${Math.floor(r() * 900 + 100)}@192.0.2.${1 + Math.floor(r() * 250)}:5060;ob' to AOR '1${Math.floor(r() * 900 + 100)}' with expiration of 300 seconds`,
  (r) =>
    `VERBOSE[${4000 + Math.floor(r() * 50)}][C-${hex8(r)}] bridge_channel.c: Channel PJSIP/1${Math.floor(r() * 900 + 100)}-0000${hex8(r).slice(0, 4)} joined 'simple_bridge' basic-bridge <${hex8(r)}-${hex8(r)}>`,
  (r) =>
    `VERBOSE[${4000 + Math.floor(r() * 50)}][C-${hex8(r)}] pbx.c: Spawn extension (from-internal, ${100 + Math.floor(r() * 80)}, 1) exited non-zero on 'PJSIP/1${Math.floor(r() * 900 + 100)}-0000${hex8(r).slice(0, 4)}'`,
  (r) =>
    `DEBUG[${4000 + Math.floor(r() * 50)}] chan_pjsip.c: Answering channel PJSIP/1${Math.floor(r() * 900 + 100)}-0000${hex8(r).slice(0, 4)}, codec ulaw`,
];

/**
 * Writes the log and returns what it contains. `attackers` distinct addresses
 * (default 1,000); timestamps advance ~1 ms per line from 2024-05-14 00:00:00.
 */
export async function generateAsteriskLog(
  path: string,
  lines: number,
  seed = 42,
  attackers = 1000,
  attackShare = 0.2,
): Promise<GeneratedLog> {
  const r = rng(seed);
  const ips = attackerList(attackers);
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  const byFormat: Record<string, number> = {};
  const byAddress = new Map<string, number>();
  let attackLines = 0;
  let t = Date.UTC(2024, 4, 14, 0, 0, 0);
  let chunk = "";
  for (let i = 0; i < lines; i++) {
    t += Math.floor(r() * 2);
    const d = new Date(t);
    const stamp = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
    let msg: string;
    if (r() < attackShare) {
      const [id, fmt] = ATTACKS[Math.floor(r() * ATTACKS.length)]!;
      const ip = ips[Math.floor(r() * ips.length)]!;
      const port = 5060 + Math.floor(r() * 2000);
      const ext = String(100 + Math.floor(r() * 900));
      const iso = `${stamp.replace(" ", "T")}.${String(t % 1000).padStart(3, "0")}+0000`;
      msg = fmt(ip, port, ext, r, iso);
      byFormat[id] = (byFormat[id] ?? 0) + 1;
      byAddress.set(ip, (byAddress.get(ip) ?? 0) + 1);
      attackLines++;
    } else {
      msg = ORDINARY[Math.floor(r() * ORDINARY.length)]!(r);
    }
    chunk += `[${stamp}] ${msg}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((res) => out.once("drain", () => res()));
      chunk = "";
    }
  }
  out.write(chunk);
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  return { lines, attackLines, byFormat, byAddress };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [outPath, n, seed] = process.argv.slice(2);
  if (!outPath) {
    process.stderr.write("usage: gen-asterisk-log.ts OUT [LINES] [SEED]\n");
    process.exit(64);
  }
  const g = await generateAsteriskLog(outPath, Number(n ?? 1_000_000), Number(seed ?? 42));
  process.stdout.write(
    JSON.stringify({ lines: g.lines, attackLines: g.attackLines, addresses: g.byAddress.size, byFormat: g.byFormat }) +
      "\n",
  );
}
