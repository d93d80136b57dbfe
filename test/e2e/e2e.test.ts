/**
 * End-to-end: a real Kamailio 5.6 in a network-namespace lab under real SIPVicious, sipp
 * floods and forged log lines, with the legitimate client registering throughout.
 *
 * - "baseline" runs every scenario WITHOUT sipwarden and proves the lab: Kamailio answers, the
 *   client registers over UDP and TCP, and each attack leaves the log lines sipwarden reads.
 * - "with sipwarden" runs the same scenarios with the daemon (test/e2e/defender.ts) and asserts
 *   the list: each attacker banned by the expected rule, its packets then dropped in the
 *   kernel, svcrack stopped early, the client never banned, `status` and `bans` right.
 *
 * Needs root and the Debian tools (scripts/install-test-deps.sh). Without them the suite is
 * skipped, except under CI=true, where that is a failure. Run: npm run test:e2e.
 */
import assert from "node:assert/strict";
import { accessSync, appendFileSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { type CampaignResult, runCampaign } from "./campaign.js";
import { baselineChecks, Checks, cliChecks, defendedChecks, forgedLineChecks } from "./checks.js";
import { type Defender, defenderSkipReason, startDefender } from "./defender.js";
import type { LogMode } from "./kamailio.js";
import { ADDR, ownNamespaces, SipLab } from "./lab.js";
import { authFailures, logLines } from "./measure.js";
import { runSync } from "./procs.js";
import { forgerPlan, sendPlan } from "./scenarios.js";
import { formatSummary } from "./summary.js";

const TOOLS = ["ip", "nft", "kamailio", "kamcmd", "sipp", "svwar", "svcrack", "python3"];

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** Why the lab cannot run on this machine, or null when it can. */
function preflight(): string | null {
  if (process.platform !== "linux") return "needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "needs root (network namespaces, nftables)";
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length) return `missing ${missing.join(", ")} (scripts/install-test-deps.sh installs them)`;
  if (!existsSync("/usr/share/sipvicious/sipvicious/svcrack.py")) return "Debian's sipvicious 0.3.3 layout not found";
  const probe = `swe2eprobe${process.pid}`;
  if (runSync("ip", ["netns", "add", probe]) === null) return "cannot create a network namespace";
  runSync("ip", ["netns", "del", probe]);
  return null;
}

const ours = ownNamespaces;

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Prints the summary table and, when E2E_SUMMARY_FILE is set, appends it there. */
function report(t: TestContext, title: string, c: CampaignResult): void {
  const table = formatSummary(title, c.rows);
  console.log(`\n${table}\n`);
  if (process.env.E2E_SUMMARY_FILE) appendFileSync(process.env.E2E_SUMMARY_FILE, `${table}\n\n`);
  for (const [name, a] of Object.entries(c.attacks))
    if (a?.ban) t.diagnostic(`${name} ${a.ip}: banned by ${a.ban.ban.rule} after ${a.timeToBanMs ?? "?"} ms`);
  t.diagnostic(`svcrack guesses that reached Kamailio: ${c.svcrackGuesses}`);
  if (c.monitor.errors.length)
    t.diagnostic(`monitor errors (${c.monitor.errors.length}): ${c.monitor.errors.slice(0, 3).join(" | ")}`);
}

const reason = preflight();
const keepWorkDir = process.env.E2E_KEEP === "1";
/** How Kamailio's log reaches the file sipwarden tails: "syslog" (default) or "stderr" (-E). */
const logMode: LogMode = process.env.E2E_KAMAILIO_LOG === "stderr" ? "stderr" : "syslog";

if (reason && process.env.CI === "true") {
  test("e2e prerequisites", () => assert.fail(`the e2e lab cannot run here: ${reason}`));
} else {
  describe("e2e: Kamailio under SIPVicious, floods and forged lines", { skip: reason ?? false }, () => {
    test("baseline, without sipwarden: the lab and every attack work", { timeout: 240_000 }, async (t) => {
      const lab = await SipLab.create({ keepWorkDir, logMode });
      const check = new Checks();
      let kamailioPid: number | undefined;
      let log = "";
      try {
        kamailioPid = lab.kamailio.pid;
        const c = await runCampaign(lab, null);
        log = lab.kamailio.log();
        const lines = logLines(log);
        report(t, `e2e baseline: Kamailio alone (no sipwarden), log via ${logMode}`, c);
        baselineChecks(c, lines, logMode, check);
        const rcs = new Set(authFailures(lines, ADDR.cracker).map((g) => g.rc));
        t.diagnostic(`svcrack auth-failed rc values: ${[...rcs].join(", ")}`);
      } finally {
        await lab.destroy();
      }
      check.ok(!isAlive(kamailioPid), "kamailio still runs after teardown");
      check.ok(ours().length === 0, `namespaces left: ${ours().join(", ")}`);
      check.done(() => `--- kamailio log (tail) ---\n${log.slice(-4000)}`);
    });

    test("with sipwarden: each attacker banned by its rule, dropped in the kernel; the client never", {
      timeout: 300_000,
      skip: defenderSkipReason(),
    }, async (t) => {
      const t0 = Date.now();
      const lab = await SipLab.create({ keepWorkDir, logMode });
      t.diagnostic(`lab up in ${Date.now() - t0} ms`);
      const check = new Checks();
      let defender: Defender | null = null;
      let log = "";
      try {
        defender = await startDefender(lab);
        t.diagnostic(`sipwarden answered its control API ${defender.startupMs} ms after spawn`);
        const c = await runCampaign(lab, defender);
        log = lab.kamailio.log();
        report(t, `e2e with sipwarden (nftables), Kamailio log via ${logMode}`, c);
        defendedChecks(c, check);
        t.diagnostic(await cliChecks(c, defender, check));
      } finally {
        await defender?.stop();
        await lab.destroy();
      }
      check.ok(ours().length === 0, `namespaces left: ${ours().join(", ")}`);
      check.done(() => `--- kamailio log (tail) ---\n${log.slice(-4000)}`);
    });

    test("Kamailio on stderr: an attacker can forge a whole log line naming the client", {
      timeout: 180_000,
    }, async (t) => {
      const t0 = Date.now();
      const lab = await SipLab.create({ keepWorkDir, logMode: "stderr" });
      t.diagnostic(`lab up in ${Date.now() - t0} ms`);
      const check = new Checks();
      let log = "";
      try {
        await sendPlan(lab, "a4", forgerPlan());
        await new Promise((r) => setTimeout(r, 500));
        log = lab.kamailio.log();
        forgedLineChecks(log.split("\n"), check);
      } finally {
        await lab.destroy();
      }
      check.done(() => `--- kamailio log (tail) ---\n${log.slice(-3000)}`);
    });

    test("leaves no namespace of this run behind", () => {
      assert.deepEqual(ours(), []);
    });
  });
}
