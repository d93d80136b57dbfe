/**
 * What the e2e test asserts about a campaign, as plain functions over its outcome. Every check
 * is recorded rather than thrown, so one failure does not hide the next and the summary prints.
 */
import assert from "node:assert/strict";
import type { Attacker, CampaignResult } from "./campaign.js";
import type { Defender } from "./defender.js";
import type { LogMode } from "./kamailio.js";
import { ADDR } from "./lab.js";
import { authFailures, firewallTail, pikeBlocks, scannerLines } from "./measure.js";
import { FORGED_STDERR_LINE, PLANTED } from "./scenarios.js";

/** svcrack must be stopped before this many guesses reach Kamailio (the issue's "under 20"). */
export const GUESS_LIMIT = 20;

/**
 * The rule each attacker must be banned by, matched against the ban's rule id. Adjust to the
 * ids in rules/*.yaml if they are named differently. The forger (scenario 5) trips pike with a
 * clean PIKE line, so any rule will do for it: what matters there is that 192.0.2.50 is never banned.
 */
export const EXPECTED_RULE: Record<Attacker, RegExp> = {
  scanner: /scan/i,
  cracker: /brute|auth|password|guess/i,
  flooder: /flood|pike|dos|rate/i,
  forger: /./,
};

export class Checks {
  readonly failed: string[] = [];
  ok(cond: unknown, msg: string): void {
    if (!cond) this.failed.push(msg);
  }
  /** Fails the test with every failed check, followed by `context()` (e.g. the log's tail). */
  done(context: () => string): void {
    if (this.failed.length) assert.fail(`${this.failed.map((f) => `- ${f}`).join("\n")}\n${context()}`);
  }
}

/** The client registered before, during and after the attacks, over UDP and TCP, and never failed. */
export function clientChecks(c: CampaignResult, check: Checks): void {
  const bad = c.registrations.filter((r) => !r.ok);
  check.ok(c.clientBeforeOk, "the client did not register over UDP and TCP before the attacks");
  check.ok(c.clientAfterOk, "the client did not register over UDP and TCP after the attacks");
  check.ok(bad.length === 0, `${bad.length} client registrations failed: ${bad.map((r) => r.detail).join(" | ")}`);
  const during = c.registrations.filter((r) => r.ok && r.at >= c.attacksStart && r.at <= c.attacksEnd);
  for (const tr of ["udp", "tcp"] as const)
    check.ok(
      during.some((r) => r.transport === tr),
      `no successful ${tr} registration during the attacks`,
    );
}

/** Without sipwarden: Kamailio answers, and every attack leaves the lines sipwarden reads. */
export function baselineChecks(c: CampaignResult, lines: readonly string[], mode: LogMode, check: Checks): void {
  for (const tr of ["udp", "tcp"] as const)
    check.ok(
      c.keepalive[tr].answers.includes("SIP/2.0 200 Keepalive"),
      `Kamailio did not answer OPTIONS over ${tr}: ${JSON.stringify(c.keepalive[tr])}`,
    );
  clientChecks(c, check);

  check.ok(
    scannerLines(lines, ADDR.scanner).some((l) => l.includes("ua=[friendly-scanner]") && l.endsWith("proto=udp")),
    "no `IPS: scanner ua=[friendly-scanner] … src_ip=198.51.100.11` line for svwar",
  );

  const guesses = authFailures(lines, ADDR.cracker);
  check.ok(
    guesses.length >= GUESS_LIMIT && guesses.every((g) => g.user === "2000"),
    `svcrack: expected at least ${GUESS_LIMIT} \`IPS: auth-failed … user=2000 … src_ip=198.51.100.12\` lines, got ${guesses.length}`,
  );

  check.ok(pikeBlocks(lines, ADDR.flooder).length >= 1, "no `PIKE - BLOCKing ip 198.51.100.13` line");
  check.ok(firewallTail(lines, ADDR.flooder).length >= 1, "no line ending in `[SIP-FIREWALL][FAIL2BAN] 198.51.100.13`");
  const flood = c.attacks.flooder?.tools.udpFlood as { created: number } | undefined;
  check.ok(flood?.created === 600, `the UDP flood created ${flood?.created} of 600 requests`);
  const tcp = c.tcpFlood;
  check.ok(
    tcp !== null && tcp.receivedDelta >= 0.9 * tcp.flood.created,
    `the TCP flood did not reach Kamailio: ${tcp?.receivedDelta} of ${tcp?.flood.created}`,
  );

  // Scenario 5 is a real attack: the planted text reaches the log. Through syslog it stays
  // inside its record; on stderr it ends a physical line of its own (forgedLineChecks).
  check.ok(
    lines.some((l) => l.includes(PLANTED)),
    "the planted `[SIP-FIREWALL][FAIL2BAN] 192.0.2.50` text did not reach the log",
  );
  if (mode === "syslog")
    check.ok(
      firewallTail(lines, ADDR.client).length === 0,
      `a syslog line ends with the planted text: ${firewallTail(lines, ADDR.client)[0]}`,
    );
  else forgedLineChecks(lines, check);
  check.ok(pikeBlocks(lines, ADDR.forger).length >= 1, "the forger's burst did not trip pike");
}

/**
 * Kamailio logging to stderr: the forger's bad request, echoed by Kamailio's parser, puts a
 * whole physical line in the log that is byte for byte what Kamailio prints for the operators'
 * pike xlog, naming the legitimate client.
 */
export function forgedLineChecks(lines: readonly string[], check: Checks): void {
  check.ok(lines.includes(FORGED_STDERR_LINE), `no physical log line equal to ${JSON.stringify(FORGED_STDERR_LINE)}`);
  check.ok(
    firewallTail(lines, ADDR.client).length >= 1,
    "the forged `[SIP-FIREWALL][FAIL2BAN] 192.0.2.50` line did not reach the end of a log line",
  );
}

/** With sipwarden: bans, kernel drops, svcrack stopped early, the client untouched. */
export function defendedChecks(c: CampaignResult, check: Checks): void {
  for (const [name, a] of Object.entries(c.attacks) as [Attacker, CampaignResult["attacks"][Attacker]][]) {
    if (!a?.ban) {
      check.ok(false, `${name} ${ADDR[name]} was never banned`);
      continue;
    }
    const b = a.ban.ban;
    check.ok(EXPECTED_RULE[name].test(b.rule), `${name} banned by ${b.rule}, expected ${EXPECTED_RULE[name]}`);
    check.ok(b.reason.length > 0, `${name}: the ban has no reason`);
    check.ok(
      a.received.end === a.received.atBan,
      `${name}: Kamailio kept receiving after the ban (${a.received.atBan} -> ${a.received.end})`,
    );
    const p = a.probe;
    if (!p) continue;
    check.ok(p.dropsAfter !== null, `${name}: no \`inet sipwarden\` table in the PBX namespace`);
    check.ok(!p.dropsAfter?.noCounters, `${name}: \`inet sipwarden\` has no counters`);
    const own = p.dropsAfter?.byIp.get(a.ip);
    const dropped =
      own !== undefined
        ? own - (p.dropsBefore?.byIp.get(a.ip) ?? 0)
        : (p.dropsAfter?.total ?? 0) - (p.dropsBefore?.total ?? 0);
    check.ok(
      p.sentDelta > 0 && dropped >= p.sentDelta,
      `${name}: nft counters rose by ${dropped} for ${p.sentDelta} probe packets`,
    );
    check.ok(p.receivedAfter === p.receivedBefore, `${name}: probe requests reached Kamailio after the ban`);
    check.ok(
      p.result.udp.answers.length === 0 && p.result.tcp.connected === 0,
      `${name}: the banned address still gets answers: ${JSON.stringify(p.result)}`,
    );
  }
  check.ok(
    c.svcrackGuesses < GUESS_LIMIT,
    `svcrack got ${c.svcrackGuesses} guesses in before its ban (limit ${GUESS_LIMIT})`,
  );
  check.ok(
    c.tcpFlood?.receivedDelta === 0,
    `TCP flood requests reached Kamailio after the ban: ${c.tcpFlood?.receivedDelta}`,
  );
  clientChecks(c, check);
  check.ok(
    c.monitor.forbidden.length === 0,
    `the legitimate client (or the PBX) was banned: ${JSON.stringify(c.monitor.forbidden[0])}`,
  );
}

/** `sipwarden status`, `sipwarden bans` and `bans --json` show every ban with its rule and reason. */
export async function cliChecks(c: CampaignResult, defender: Defender, check: Checks): Promise<string> {
  const status = await defender.cli(["status"]);
  const active = Number(/active bans: (\d+)/.exec(status.stdout)?.[1] ?? -1);
  check.ok(status.code === 0 && active >= 4, `sipwarden status: exit ${status.code}, active bans ${active}`);
  const text = await defender.cli(["bans"]);
  const json = await defender.cli(["bans", "--json"]);
  let listed: { ip: string; rule: string; reason: string }[] = [];
  try {
    listed = JSON.parse(json.stdout) as typeof listed;
  } catch {
    check.ok(false, `sipwarden bans --json is not JSON: ${json.stdout.slice(0, 300)} ${json.stderr}`);
  }
  for (const [name, a] of Object.entries(c.attacks)) {
    if (!a?.ban) continue;
    const row = listed.find((b) => b.ip === a.ip || b.ip === `${a.ip}/32`);
    check.ok(row && row.rule === a.ban.ban.rule && row.reason, `bans --json lacks ${name} ${a.ip} with its rule`);
    check.ok(
      text.stdout.includes(a.ip) && text.stdout.includes(a.ban.ban.rule),
      `sipwarden bans does not show ${a.ip} with ${a.ban.ban.rule}`,
    );
  }
  check.ok(!listed.some((b) => b.ip.startsWith(ADDR.client)), "sipwarden bans lists 192.0.2.50");
  return `sipwarden status:\n${status.stdout}\nsipwarden bans:\n${text.stdout}`;
}
