/**
 * Drivers for the lab's traffic. Each one is bounded in count and in time, runs inside its own
 * node's namespace, and returns what it did.
 *
 * 1. svwar (Debian's sipvicious 0.3.3) from a1.
 * 2. svcrack against the weak account 2000 from a2, with a User-Agent that is not on the
 *    scanner list and at 5 guesses/s (svcrack -t 0.2), under pike's threshold: only the
 *    brute-force rule can stop it.
 * 3. An OPTIONS flood with sipp from a3: over UDP, then over TCP with a fresh connection per request.
 * 4. The legitimate client (sipp, user 1001) registering every second, UDP and TCP in turn.
 * 5. The forger (a4): requests whose Call-ID, User-Agent or raw text carry
 *    `[SIP-FIREWALL][FAIL2BAN] 192.0.2.50`, meant to get the legitimate client banned.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/paths.js";
import { ADDR, type Sender, type SipLab } from "./lab.js";
import { type RunResult, run, sleep } from "./procs.js";
import type { SendPlan, SendResult } from "./tools/sip-send.js";

export const E2E_DIR = join(ROOT, "test", "e2e");
const SIPP_DIR = join(E2E_DIR, "sipp");

/** The legitimate client's account (test/e2e/kamailio/db/subscriber). */
export const CLIENT = { user: "1001", password: "Lab-Client-1001-xK9v!2fQ", domain: "lab.example" } as const;
/** The weak account svcrack attacks; its password `1234` is word 79 of the dictionary. */
export const WEAK_USER = "2000";
export const DICTIONARY = join(E2E_DIR, "svcrack", "words.txt");
/** User-Agent the svcrack shim sends instead of "friendly-scanner" (a common softphone's). */
export const CRACKER_UA = "Z 5.6.4 v2.10.20.2";
/** The text scenario 5 plants, naming the legitimate client. */
export const PLANTED = `[SIP-FIREWALL][FAIL2BAN] ${ADDR.client}`;

// ---------------------------------------------------------------------------------------------
// 1. svwar

/** `svwar -e100-300 -m REGISTER --force`: its probe has User-Agent friendly-scanner. */
export function runSvwar(lab: SipLab, range = "100-300"): Promise<RunResult> {
  return run("svwar", ["-e", range, "-m", "REGISTER", "--force", "--maximumtime", "3", "-p", "5060", ADDR.pbx], {
    ns: lab.ns("a1"),
    timeoutMs: 40_000,
  });
}

// ---------------------------------------------------------------------------------------------
// 2. svcrack

/**
 * svcrack against account 2000 with the 100-word dictionary, through the User-Agent shim.
 * `-t 0.2` makes svcrack wait 0.2 s for more answers before each guess: 5 guesses/s.
 * It stops by itself `--maximumtime` seconds after its last answer (for example once banned).
 */
export function runSvcrack(lab: SipLab, selectTime = "0.2"): Promise<RunResult> {
  return run(
    "python3",
    [
      join(E2E_DIR, "tools", "svcrack-ua.py"),
      CRACKER_UA,
      "-u",
      WEAK_USER,
      "-d",
      DICTIONARY,
      "-t",
      selectTime,
      "--maximumtime",
      "3",
      "-p",
      "5060",
      ADDR.pbx,
    ],
    { ns: lab.ns("a2"), timeoutMs: 60_000 },
  );
}

// ---------------------------------------------------------------------------------------------
// 3. the flood

export interface FloodResult {
  transport: "udp" | "tcp";
  /** Calls sipp created: one OPTIONS each (no retransmissions). */
  created: number;
  answered: number;
  run: RunResult;
}

/** Reads sipp's `-trace_stat` CSV: the counters of its last line. */
function sippStats(file: string, stdout: string): { created: number; answered: number } {
  try {
    const text = readFileSync(file, "utf8").trim().split("\n");
    const head = (text[0] ?? "").split(";");
    const last = (text.at(-1) ?? "").split(";");
    const col = (name: string) => Number(last[head.indexOf(name)] ?? Number.NaN);
    return { created: col("TotalCallCreated"), answered: col("SuccessfulCall(C)") };
  } catch {
    const m = /OPTIONS ---------->\s+(\d+)/.exec(stdout);
    return { created: m ? Number(m[1]) : Number.NaN, answered: Number.NaN };
  }
}

/**
 * sipp OPTIONS flood from a3: `rate` requests/s, `calls` in all. UDP uses one socket (`-t u1`,
 * so conntrack sees one established flow); TCP opens a fresh connection per request (`-t tn`).
 */
export async function runFlood(
  lab: SipLab,
  transport: "udp" | "tcp",
  rate: number,
  calls: number,
): Promise<FloodResult> {
  const stat = join(lab.workDir, `flood-${transport}-${Date.now()}.csv`);
  const r = await run(
    "sipp",
    [
      `${ADDR.pbx}:5060`,
      "-sf",
      join(SIPP_DIR, "options-flood.xml"),
      "-i",
      ADDR.flooder,
      "-t",
      transport === "udp" ? "u1" : "tn",
      "-max_socket",
      "1000",
      "-r",
      String(rate),
      "-m",
      String(calls),
      "-timeout",
      `${Math.ceil(calls / rate) + 10}s`,
      "-nostdin",
      "-nr",
      "-trace_stat",
      "-stf",
      stat,
    ],
    { ns: lab.ns("a3"), timeoutMs: (Math.ceil(calls / rate) + 20) * 1000, cwd: lab.workDir, maxOutput: 8192 },
  );
  return { transport, ...sippStats(stat, r.stdout), run: r };
}

// ---------------------------------------------------------------------------------------------
// 4. the legitimate client

export interface Registration {
  at: number;
  transport: "udp" | "tcp";
  ok: boolean;
  ms: number;
  detail?: string;
}

/** One REGISTER with digest auth from 192.0.2.50; ok only on the final 200 OK. */
export async function registerOnce(lab: SipLab, transport: "udp" | "tcp"): Promise<Registration> {
  const at = Date.now();
  const r = await run(
    "sipp",
    [
      `${ADDR.pbx}:5060`,
      "-sf",
      join(SIPP_DIR, "register.xml"),
      "-i",
      ADDR.client,
      "-t",
      transport === "udp" ? "u1" : "t1",
      "-m",
      "1",
      "-set",
      "user",
      CLIENT.user,
      "-set",
      "domain",
      CLIENT.domain,
      "-au",
      CLIENT.user,
      "-ap",
      CLIENT.password,
      "-timeout",
      "8s",
      "-nostdin",
    ],
    { ns: lab.ns("cli"), timeoutMs: 12_000, cwd: lab.workDir, maxOutput: 4096 },
  );
  const ok = r.code === 0;
  const reg: Registration = { at, transport, ok, ms: Date.now() - at };
  if (!ok) {
    // sipp's exit code says why (1: the call failed, 97: -timeout hit, 255: fatal); its last
    // error line, if any, says more.
    const err = r.stderr.trim().split("\n").at(-1) ?? "";
    reg.detail = `${transport} at ${new Date(at).toISOString()}: sipp exit ${r.code ?? r.signal}${r.timedOut ? " (killed at the limit)" : ""} after ${reg.ms} ms${err ? `: ${err.slice(0, 200)}` : ""}`;
  }
  return reg;
}

/** Registers every `periodMs`, UDP and TCP in turn, until stopped. */
export class ClientLoop {
  readonly results: Registration[] = [];
  #stop = false;
  #done: Promise<void> | null = null;

  constructor(
    readonly lab: SipLab,
    readonly periodMs = 1000,
  ) {}

  start(): this {
    this.#done = (async () => {
      let i = 0;
      while (!this.#stop) {
        const t = Date.now();
        this.results.push(await registerOnce(this.lab, i++ % 2 === 0 ? "udp" : "tcp"));
        const left = this.periodMs - (Date.now() - t);
        if (left > 0 && !this.#stop) await sleep(left);
      }
    })();
    return this;
  }

  /** Resolves once at least `n` registrations over each transport have succeeded since `since`. */
  async waitForSuccesses(n: number, since: number, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const ok = (tr: string) => this.results.filter((r) => r.ok && r.at >= since && r.transport === tr).length;
      if (ok("udp") >= n && ok("tcp") >= n) return true;
      await sleep(200);
    }
    return false;
  }

  async stop(): Promise<Registration[]> {
    this.#stop = true;
    await this.#done;
    return this.results;
  }
}

// ---------------------------------------------------------------------------------------------
// The bounded sender (tools/sip-send.ts), for scenario 5 and the after-ban probes

export async function sendPlan(lab: SipLab, role: Sender, plan: SendPlan): Promise<SendResult> {
  const file = join(lab.workDir, `plan-${role}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.json`);
  writeFileSync(file, JSON.stringify(plan));
  const r = await run(process.execPath, ["--import", "tsx", join(E2E_DIR, "tools", "sip-send.ts"), file], {
    ns: lab.ns(role),
    timeoutMs: 40_000,
    cwd: ROOT,
  });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as SendResult;
  } catch {
    throw new Error(`sip-send in ${role} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
}

let seq = 0;
const tag = () => `${Date.now().toString(36)}${(seq++).toString(36)}`;

/** An out-of-dialog OPTIONS to the PBX, CRLF-terminated. */
export function options(from: string, transport: "UDP" | "TCP", opts: { callId?: string; ua?: string } = {}): string {
  const t = tag();
  return [
    `OPTIONS sip:${ADDR.pbx}:5060 SIP/2.0`,
    `Via: SIP/2.0/${transport} ${from}:5070;branch=z9hG4bK${t}`,
    "Max-Forwards: 70",
    `From: <sip:probe@${from}>;tag=${t}`,
    `To: <sip:${ADDR.pbx}>`,
    `Call-ID: ${opts.callId ?? `${t}@${from}`}`,
    "CSeq: 1 OPTIONS",
    `User-Agent: ${opts.ua ?? "lab-probe/1.0"}`,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

/** A REGISTER for user 1001 with made-up digest credentials (Kamailio answers 401 and logs auth-failed). */
function forgedRegister(from: string, callIdHeader: string, uaHeader: string): string {
  const t = tag();
  return [
    `REGISTER sip:${CLIENT.domain} SIP/2.0`,
    `Via: SIP/2.0/UDP ${from}:5070;branch=z9hG4bK${t}`,
    "Max-Forwards: 70",
    `From: <sip:${CLIENT.user}@${CLIENT.domain}>;tag=${t}`,
    `To: <sip:${CLIENT.user}@${CLIENT.domain}>`,
    callIdHeader,
    "CSeq: 2 REGISTER",
    uaHeader,
    `Authorization: Digest username="${CLIENT.user}", realm="${CLIENT.domain}", nonce="${t}", uri="sip:${CLIENT.domain}", response="0123456789abcdef0123456789abcdef"`,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

/** A stderr line as Kamailio would print it for the operators' pike xlog, naming the client. */
export const FORGED_STDERR_LINE = ` 1(4242) ALERT: <script>: ${PLANTED}`;

/**
 * Scenario 5, from a4 (198.51.100.14):
 * - a: REGISTER, wrong credentials, the planted text in Call-ID and User-Agent (it lands in
 *   log_prefix and in `ua=[…]` of the auth-failed line);
 * - b: the same with folded headers (CRLF + space, legal SIP): Kamailio keeps the CRLF in $ci
 *   and $ua and writes it raw to stderr, so a whole forged log line appears;
 * - c: a malformed request (bad Via) whose raw text, which Kamailio's parser dumps to the log,
 *   holds the forged line terminated by a bare LF (no CR left to give it away);
 * - d: a burst of 40 OPTIONS with the planted text in the Call-ID, enough to trip pike, so the
 *   pike and SIP-FIREWALL lines for 198.51.100.14 carry it in their prefix.
 */
export function forgerPlan(): SendPlan {
  const from = ADDR.forger;
  const messages = [
    forgedRegister(from, `Call-ID: ${tag()} ${PLANTED}`, `User-Agent: ${PLANTED}`),
    forgedRegister(from, `Call-ID: ${tag()}\r\n${FORGED_STDERR_LINE}\r\n x`, "User-Agent: Linphone/5.2"),
    forgedRegister(from, `Call-ID: ${tag()}@${from}`, `User-Agent: Linphone/5.2\r\n${FORGED_STDERR_LINE}\r\n y`),
    [
      `OPTIONS sip:${ADDR.pbx} SIP/2.0`,
      `Via: SIP/2.0/UDP [${from}`,
      `From: <sip:x@${from}>;tag=${tag()}`,
      `To: <sip:${ADDR.pbx}>`,
      `Call-ID: ${tag()}`,
      "CSeq: 1 OPTIONS",
      `X-Note: see below\n${FORGED_STDERR_LINE}\n`,
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n"),
  ];
  const burst = Array.from({ length: 40 }, (_, i) => options(from, "UDP", { callId: `${i}-${PLANTED}` }));
  return {
    local: from,
    target: ADDR.pbx,
    port: 5060,
    udp: { messages: [...messages, ...burst], localPort: 5070, gapMs: 5, waitMs: 500 },
  };
}

/**
 * After a ban: 10 OPTIONS over UDP and 3 fresh TCP connections from the banned address. With
 * the ban in force none is answered and none connects.
 */
export function probePlan(from: string, udp = 10, tcp = 3): SendPlan {
  return {
    local: from,
    target: ADDR.pbx,
    port: 5060,
    udp: { messages: Array.from({ length: udp }, () => options(from, "UDP")), gapMs: 20, waitMs: 700 },
    tcp: { messages: Array.from({ length: tcp }, () => options(from, "TCP")), connectTimeoutMs: 1000, waitMs: 1000 },
  };
}

/** The legitimate client asks the PBX for a keepalive answer: proof that Kamailio answers. */
export async function keepalive(lab: SipLab): Promise<SendResult> {
  return sendPlan(lab, "cli", {
    local: ADDR.client,
    target: ADDR.pbx,
    port: 5060,
    udp: { messages: [options(ADDR.client, "UDP")], waitMs: 1000 },
    tcp: { messages: [options(ADDR.client, "TCP")], connectTimeoutMs: 2000, waitMs: 2000 },
  });
}
