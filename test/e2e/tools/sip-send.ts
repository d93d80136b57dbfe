/**
 * A small bounded SIP sender, run by the e2e test inside a lab namespace:
 *
 *   ip netns exec <ns> node --import tsx test/e2e/tools/sip-send.ts <plan.json>
 *
 * It sends the plan's raw messages over UDP (one socket) and/or TCP (a fresh connection per
 * message), collects the first line of every answer, and prints one JSON result on stdout.
 * Everything is bounded: at most 500 messages, at most 30 s.
 */
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect, isIP } from "node:net";

/** What to send; written by the test as JSON. */
export interface SendPlan {
  /** Source address to bind (the namespace's own address). */
  local: string;
  target: string;
  port: number;
  udp?: {
    messages: string[];
    localPort?: number;
    /** Pause between messages. */
    gapMs?: number;
    /** How long to keep listening for answers after the last message. */
    waitMs?: number;
  };
  tcp?: {
    messages: string[];
    connectTimeoutMs?: number;
    /** How long to wait for an answer on each connection. */
    waitMs?: number;
  };
}

/** What happened; printed as JSON. */
export interface SendResult {
  udp: { sent: number; answers: string[] };
  tcp: { attempted: number; connected: number; answers: string[] };
}

const MAX_MESSAGES = 500;
const DEADLINE_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const firstLine = (b: Buffer) => b.toString("latin1").split("\r\n")[0] ?? "";

async function sendUdp(plan: SendPlan, p: NonNullable<SendPlan["udp"]>, res: SendResult): Promise<void> {
  const sock = createSocket("udp4");
  sock.on("message", (m) => res.udp.answers.push(firstLine(m)));
  await new Promise<void>((ok, fail) => {
    sock.once("error", fail);
    sock.bind({ address: plan.local, port: p.localPort ?? 0 }, () => ok());
  });
  for (const m of p.messages) {
    await new Promise<void>((ok) => sock.send(Buffer.from(m, "latin1"), plan.port, plan.target, () => ok()));
    res.udp.sent++;
    if (p.gapMs) await sleep(p.gapMs);
  }
  await sleep(p.waitMs ?? 500);
  sock.close();
}

function oneTcp(plan: SendPlan, msg: string, connectMs: number, waitMs: number, res: SendResult): Promise<void> {
  return new Promise((done) => {
    res.tcp.attempted++;
    const s = connect({ host: plan.target, port: plan.port, localAddress: plan.local });
    let finished = false;
    const end = () => {
      if (finished) return;
      finished = true;
      clearTimeout(t);
      s.destroy();
      done();
    };
    let t = setTimeout(end, connectMs);
    s.on("connect", () => {
      res.tcp.connected++;
      clearTimeout(t);
      t = setTimeout(end, waitMs);
      s.write(Buffer.from(msg, "latin1"));
    });
    s.on("data", (d) => {
      res.tcp.answers.push(firstLine(d));
      end();
    });
    s.on("error", end);
    s.on("close", end);
  });
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error("usage: sip-send.ts <plan.json>");
  const plan = JSON.parse(readFileSync(file, "utf8")) as SendPlan;
  if (!isIP(plan.local) || !isIP(plan.target)) throw new Error("plan needs literal local and target addresses");
  const total = (plan.udp?.messages.length ?? 0) + (plan.tcp?.messages.length ?? 0);
  if (total > MAX_MESSAGES) throw new Error(`plan has ${total} messages, more than ${MAX_MESSAGES}`);
  const res: SendResult = { udp: { sent: 0, answers: [] }, tcp: { attempted: 0, connected: 0, answers: [] } };
  const guard = setTimeout(() => {
    process.stdout.write(JSON.stringify(res) + "\n");
    process.exit(2);
  }, DEADLINE_MS);
  if (plan.udp) await sendUdp(plan, plan.udp, res);
  if (plan.tcp)
    for (const m of plan.tcp.messages)
      await oneTcp(plan, m, plan.tcp.connectTimeoutMs ?? 1000, plan.tcp.waitMs ?? 1000, res);
  clearTimeout(guard);
  process.stdout.write(JSON.stringify(res) + "\n");
}

main().catch((e: unknown) => {
  process.stderr.write(`sip-send: ${(e as Error).message}\n`);
  process.exit(1);
});
