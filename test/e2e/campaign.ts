/**
 * One run of every scenario against the lab, in order, while the legitimate client keeps
 * registering: 1 svwar, 2 svcrack, 5 the forger, 3 the flood (UDP, then TCP). With a defender,
 * each attack is followed by the after-ban checks (the real tool again where it makes sense,
 * then a probe from the banned address). Nothing is asserted here: the test does that on the
 * returned outcome, so that one failure does not hide the others and the summary always prints.
 */
import type { Defender } from "./defender.js";
import { ADDR, ROLE_OF, type Sender, type SipLab } from "./lab.js";
import { authFailures, type BanSeen, Monitor, type NftDrops, sipwardenDrops, timeToBan } from "./measure.js";
import type { RunResult } from "./procs.js";
import { sleep } from "./procs.js";
import {
  ClientLoop,
  type FloodResult,
  forgerPlan,
  keepalive,
  probePlan,
  type Registration,
  runFlood,
  runSvcrack,
  runSvwar,
  sendPlan,
} from "./scenarios.js";
import type { ScenarioRow } from "./summary.js";
import type { SendResult } from "./tools/sip-send.js";

export type Attacker = keyof typeof ROLE_OF;

/** What the after-ban probe saw. */
export interface ProbeOutcome {
  result: SendResult;
  dropsBefore: NftDrops | null;
  dropsAfter: NftDrops | null;
  receivedBefore: number;
  receivedAfter: number;
  sentDelta: number;
}

export interface AttackOutcome {
  attacker: Attacker;
  ip: string;
  /** Packets sent to the PBX's SIP port during the scenario (attacker-side counter). */
  sent: number;
  received: { start: number; atBan: number | null; end: number };
  ban: BanSeen | null;
  timeToBanMs: number | null;
  tools: Record<string, RunResult | FloodResult | SendResult>;
  probe: ProbeOutcome | null;
}

export interface CampaignResult {
  keepalive: SendResult;
  attacks: Partial<Record<Attacker, AttackOutcome>>;
  /** The TCP part of the flood, run after the UDP part (after the ban, when defended). */
  tcpFlood: { flood: FloodResult; sent: number; receivedDelta: number } | null;
  registrations: Registration[];
  attacksStart: number;
  attacksEnd: number;
  clientBeforeOk: boolean;
  clientAfterOk: boolean;
  monitor: Monitor;
  svcrackGuesses: number;
  rows: ScenarioRow[];
}

export interface CampaignOptions {
  /** How long to wait for each ban (defended runs). */
  banTimeoutMs?: number;
  /** Pause after a ban is seen before "reached before ban" is read, so in-flight work lands. */
  settleMs?: number;
}

export async function runCampaign(
  lab: SipLab,
  defender: Defender | null,
  opts: CampaignOptions = {},
): Promise<CampaignResult> {
  const banTimeout = opts.banTimeoutMs ?? 30_000;
  const settle = opts.settleMs ?? 1000;
  const k = lab.kamailio;
  const monitor = new Monitor(k, defender ? () => defender.bans() : null, [ADDR.client, ADDR.pbx]).start();
  const client = new ClientLoop(lab).start();
  const attacks: CampaignResult["attacks"] = {};
  const rx = async (ip: string) => (await k.received()).get(ip) ?? 0;
  const sentTotal = async (role: Sender) => {
    const s = await lab.sent(role);
    return s.udp + s.tcp;
  };

  const t0 = Date.now();
  const ka = await keepalive(lab);
  const clientBeforeOk = await client.waitForSuccesses(2, t0, 20_000);

  /** Runs one attack; with a defender, waits for the ban and then checks what gets through. */
  async function attack(
    attacker: Attacker,
    tools: () => Promise<Record<string, RunResult | FloodResult | SendResult>>,
    afterBan?: () => Promise<Record<string, RunResult | FloodResult | SendResult>>,
  ): Promise<AttackOutcome> {
    const role = ROLE_OF[attacker];
    const ip = ADDR[attacker];
    const sent0 = await sentTotal(role);
    const start = await rx(ip);
    const running = tools();
    let ban: BanSeen | null = null;
    let atBan: number | null = null;
    if (defender) {
      ban = (await Promise.race([monitor.waitForBan(ip, banTimeout), running.then(() => undefined)])) ?? null;
      // The tool may finish first (svwar gives up quickly): the ban can still follow.
      if (!ban) ban = (await monitor.waitForBan(ip, banTimeout)) ?? null;
      if (ban) {
        await sleep(settle);
        atBan = await rx(ip);
      }
    }
    const result = await running;
    if (ban && afterBan) Object.assign(result, await afterBan());
    // The attack's own packets; the probe below is ours and is reported on its own.
    const sent = (await sentTotal(role)) - sent0;
    let probe: ProbeOutcome | null = null;
    if (ban) {
      const pbx = lab.ns("pbx");
      const dropsBefore = await sipwardenDrops(pbx);
      const receivedBefore = await rx(ip);
      const s0 = await sentTotal(role);
      const res = await sendPlan(lab, role, probePlan(ip));
      await sleep(300);
      probe = {
        result: res,
        dropsBefore,
        dropsAfter: await sipwardenDrops(pbx),
        receivedBefore,
        receivedAfter: await rx(ip),
        sentDelta: (await sentTotal(role)) - s0,
      };
    }
    const outcome: AttackOutcome = {
      attacker,
      ip,
      sent,
      received: { start, atBan, end: await rx(ip) },
      ban,
      timeToBanMs: ban ? timeToBan(monitor.firstSeen.get(ip), ban) : null,
      tools: result,
      probe,
    };
    attacks[attacker] = outcome;
    return outcome;
  }

  const attacksStart = Date.now();
  // 1. svwar; once banned, svwar is run again: its packets must now die in the kernel.
  await attack(
    "scanner",
    async () => ({ svwar: await runSvwar(lab) }),
    async () => ({ svwarAfterBan: await runSvwar(lab) }),
  );
  // 2. svcrack, disguised and throttled below pike.
  await attack("cracker", async () => ({ svcrack: await runSvcrack(lab) }));
  // 5. the forger.
  await attack("forger", async () => ({ forged: await sendPlan(lab, "a4", forgerPlan()) }));
  // 3. the flood over UDP (one socket: one established conntrack flow) ...
  await attack("flooder", async () => ({ udpFlood: await runFlood(lab, "udp", 200, 600) }));
  // ... then over TCP with a fresh connection per request.
  const tcpSent0 = await sentTotal("a3");
  const tcpRx0 = await rx(ADDR.flooder);
  const tcp = await runFlood(lab, "tcp", 100, 200);
  await sleep(500);
  const tcpFlood = {
    flood: tcp,
    sent: (await sentTotal("a3")) - tcpSent0,
    receivedDelta: (await rx(ADDR.flooder)) - tcpRx0,
  };
  const attacksEnd = Date.now();

  const clientAfterOk = await client.waitForSuccesses(2, attacksEnd, 20_000);
  const registrations = await client.stop();
  await monitor.poll();
  await monitor.stop();

  const svcrackGuesses = authFailures(k.lines(), ADDR.cracker).length;
  const rows: ScenarioRow[] = [];
  const row = (scenario: string, a: AttackOutcome | undefined, first?: string) => {
    if (!a) return;
    const p = a.probe;
    const reached = p ? p.receivedAfter - p.receivedBefore : 0;
    const notes = [first, p && `after the ban: ${p.sentDelta} probe packets, ${reached} reached Kamailio`];
    const note = notes.filter(Boolean).join("; ");
    rows.push({
      scenario,
      attacker: a.ip,
      packetsSent: a.sent,
      reachedBeforeBan: (a.received.atBan ?? a.received.end) - a.received.start,
      reachedTotal: a.received.end - a.received.start,
      timeToBanMs: a.timeToBanMs,
      rule: a.ban?.ban.rule ?? null,
      ...(note ? { note } : {}),
    });
  };
  row("1 svwar", attacks.scanner);
  row("2 svcrack (UA changed, 5 guesses/s)", attacks.cracker, `${svcrackGuesses} guesses reached Kamailio`);
  row("5 forged lines naming 192.0.2.50", attacks.forger);
  row("3 flood, sipp OPTIONS over UDP", attacks.flooder);
  rows.push({
    scenario: "3 flood, sipp OPTIONS over TCP (new connection each)",
    attacker: ADDR.flooder,
    packetsSent: tcpFlood.sent,
    reachedBeforeBan: defender ? 0 : tcpFlood.receivedDelta,
    reachedTotal: tcpFlood.receivedDelta,
    timeToBanMs: null,
    rule: attacks.flooder?.ban ? attacks.flooder.ban.ban.rule : null,
    note: `${tcpFlood.flood.created} requests attempted${attacks.flooder?.ban ? ", after the UDP ban" : ""}`,
  });
  const ok = registrations.filter((r) => r.ok).length;
  rows.push({
    scenario: "4 legitimate client (sipp REGISTER, UDP+TCP)",
    attacker: ADDR.client,
    packetsSent: await sentTotal("cli"),
    reachedBeforeBan: (await rx(ADDR.client)) ?? 0,
    reachedTotal: (await rx(ADDR.client)) ?? 0,
    timeToBanMs: null,
    rule: null,
    note: `${ok}/${registrations.length} registrations OK`,
  });

  return {
    keepalive: ka,
    attacks,
    tcpFlood,
    registrations,
    attacksStart,
    attacksEnd,
    clientBeforeOk,
    clientAfterOk,
    monitor,
    svcrackGuesses,
    rows,
  };
}
