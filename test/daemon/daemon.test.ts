/**
 * The daemon end to end, as a real child process on real files with the real SQLite store and
 * the dry-run firewall backend: lines appended to a log become bans; bans, manual bans and
 * read positions survive SIGKILL; rotation under load loses nothing; reload keeps state; a bad
 * config exits 78.
 */
import assert from "node:assert/strict";
import { appendFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { apiCall } from "../../src/api/client.js";
import type { EventRecord } from "../../src/core/events.js";
import { VERSION } from "../../src/daemon.js";
import {
  type DaemonProc,
  pjsipFailure,
  startDaemon,
  tempDir,
  UTC_CONFIG,
  waitFor,
  writeConfig,
} from "../helpers/daemon-proc.js";

const running: DaemonProc[] = [];
after(async () => {
  for (const d of running) await d.stop("SIGKILL");
});

async function start(dir: string, log: string, extra: string[] = []): Promise<DaemonProc> {
  const cfg = writeConfig(dir, UTC_CONFIG);
  const d = await startDaemon({
    dir,
    args: ["-c", cfg, "--log", log, "--format", "asterisk", "--backend", "dry-run", ...extra],
  });
  running.push(d);
  return d;
}

async function events(d: DaemonProc): Promise<EventRecord[]> {
  return apiCall<EventRecord[]>("GET", "/v1/events?limit=10000", undefined, { socket: d.socket });
}

describe("daemon", { timeout: 180_000 }, () => {
  it("bans an attacker from appended log lines, in the store and the dry-run firewall", async () => {
    const dir = tempDir();
    const log = join(dir, "full");
    writeFileSync(log, "");
    const d = await start(dir, log);
    // Once started, it says so, with the backend and how long the start took from exec.
    const running = await waitFor("the running line", () =>
      d
        .output()
        .split("\n")
        .map((l) => (l.startsWith("{") ? (JSON.parse(l) as Record<string, unknown>) : null))
        .find((j) => j?.msg === "sipwarden running"),
    );
    assert.equal(running.backend, "dry-run");
    assert.equal(running.version, VERSION);
    assert.ok(typeof running.startupMs === "number" && running.startupMs > 0 && running.startupMs < 60_000);
    for (let i = 0; i < 6; i++) appendFileSync(log, pjsipFailure("198.51.100.7", i) + "\n");
    const bans = await waitFor("the ban", async () => {
      const b = await d.bans();
      return b.find((x) => x.ip === "198.51.100.7") ? b : null;
    });
    const ban = bans.find((x) => x.ip === "198.51.100.7")!;
    assert.equal(ban.rule, "sip-auth-bruteforce");
    assert.equal(ban.source, "rule");
    assert.ok(ban.expires && Date.parse(ban.expires) > Date.now() + 50 * 60_000, "about an hour");
    await waitFor("the dry-run firewall to report it", () => /would run: .*198\.51\.100\.7/.test(d.output()));
    const st = await d.status();
    assert.equal(st.dryRun, true);
    assert.equal(st.activeBans, 1);
    assert.ok(st.eventsTotal >= 6);
    // An address below the threshold is not banned.
    appendFileSync(log, pjsipFailure("198.51.100.8", 1) + "\n");
    await waitFor("the event", async () => (await events(d)).some((e) => e.ip === "198.51.100.8"));
    assert.ok(!(await d.bans()).some((b) => b.ip === "198.51.100.8"));
    await d.stop();
  });

  it("keeps bans, manual bans and unbans across SIGKILL and restart", async () => {
    const dir = tempDir();
    const log = join(dir, "full");
    writeFileSync(log, "");
    let d = await start(dir, log);
    for (let i = 0; i < 5; i++) appendFileSync(log, pjsipFailure("198.51.100.20", i) + "\n");
    await waitFor("rule ban", async () => (await d.bans()).some((b) => b.ip === "198.51.100.20"));
    await apiCall(
      "POST",
      "/v1/bans",
      { target: "198.51.100.0/28", for: "2h", reason: "test range" },
      { socket: d.socket },
    );
    await apiCall("POST", "/v1/bans", { target: "203.0.113.99", reason: "to be lifted" }, { socket: d.socket });
    await apiCall("DELETE", "/v1/bans/203.0.113.99", undefined, { socket: d.socket });
    await d.stop("SIGKILL");
    d = await start(dir, log);
    const bans = await d.bans();
    const ips = bans.map((b) => b.ip).sort();
    assert.deepEqual(ips, ["198.51.100.0/28", "198.51.100.20"]);
    assert.equal(bans.find((b) => b.ip === "198.51.100.0/28")!.reason, "test range");
    assert.match(d.output(), /"restored":2/);
    await d.stop();
  });

  it("loses no line and counts none twice across repeated SIGKILLs while lines are appended", async () => {
    const dir = tempDir();
    const log = join(dir, "full");
    writeFileSync(log, "");
    let d = await start(dir, log);
    // Every line from a different address: no bans, so every line is exactly one stored event.
    let n = 0;
    // VERBOSE lines in between are skipped on their bytes (never decoded): their positions
    // must still be committed, and never behind a line already read.
    const verbose = (i: number) =>
      `[${new Date().toISOString().slice(0, 19).replace("T", " ")}] VERBOSE[4011][C-0000000${i % 10}] pbx.c: Executing [200@from-internal:1] Dial("PJSIP/200-0000${i}")`;
    const append = (k: number) => {
      let s = "";
      for (let i = 0; i < k; i++, n++) {
        s += pjsipFailure(`192.0.2.${1 + (n % 250)}`, n) + "\n";
        if (n % 3 !== 0) s += `${verbose(n)}\n${verbose(n + 1)}\n`;
      }
      appendFileSync(log, s);
    };
    for (let round = 0; round < 3; round++) {
      for (let j = 0; j < 10; j++) {
        append(20);
        await new Promise((r) => setTimeout(r, 5));
      }
      await d.stop("SIGKILL");
      append(50); // written while the daemon is down
      d = await start(dir, log);
    }
    append(30);
    const total = n;
    let evs: EventRecord[] = [];
    await waitFor(
      "every line",
      async () => {
        evs = await events(d);
        return evs.length >= total;
      },
      20_000,
    ).catch(() => {});
    const ids = evs.map((e) => /callid: (t\d+)-/.exec(e.line)?.[1]);
    assert.equal(new Set(ids).size, ids.length, "an event was stored twice");
    assert.equal(ids.length, total, "a line was lost");
    await d.stop();
  });

  it("follows rename-and-create rotation under load without losing lines", async () => {
    const dir = tempDir();
    const log = join(dir, "full");
    writeFileSync(log, "");
    const d = await start(dir, log);
    let n = 0;
    for (let r = 0; r < 4; r++) {
      for (let j = 0; j < 5; j++) {
        let s = "";
        for (let i = 0; i < 40; i++, n++) s += pjsipFailure(`192.0.2.${1 + (n % 250)}`, n) + "\n";
        appendFileSync(log, s);
      }
      renameSync(log, `${log}.${r + 1}`);
      writeFileSync(log, "");
    }
    const evs = await waitFor("every line", async () => {
      const e = await events(d);
      return e.length >= n ? e : null;
    });
    const ids = new Set(evs.map((e) => /callid: (t\d+)-/.exec(e.line)?.[1]));
    assert.equal(ids.size, n);
    await d.stop();
  });

  it("reloads config and rules on SIGHUP without losing bans", async () => {
    const dir = tempDir();
    const log = join(dir, "full");
    writeFileSync(log, "");
    const d = await start(dir, log);
    await apiCall("POST", "/v1/bans", { target: "198.51.100.77" }, { socket: d.socket });
    const before = (await d.status()).rules.map((r) => r.id);
    assert.ok(before.includes("sip-extension-enumeration"));
    writeConfig(dir, UTC_CONFIG + "rules:\n  disable: [sip-extension-enumeration]\n");
    d.child.kill("SIGHUP");
    await waitFor(
      "the reload",
      async () => !(await d.status()).rules.some((r) => r.id === "sip-extension-enumeration"),
    );
    assert.ok((await d.bans()).some((b) => b.ip === "198.51.100.77"));
    // A bad config on reload is refused and the old one stays.
    writeConfig(dir, "rules:\n  bogus: 1\n");
    d.child.kill("SIGHUP");
    await waitFor("the refusal", () => /reload failed/.test(d.output()));
    assert.equal((await d.status()).rules.length, before.length - 1);
    await d.stop();
  });

  it("exits 78 with file, line and path on a bad config", async () => {
    const dir = tempDir();
    const cfg = writeConfig(dir, "policy:\n  allowlist: [192.0.2.0/24, nonsense]\n");
    const d = await startDaemon({ dir, args: ["-c", cfg, "--backend", "dry-run"], ready: false });
    const code = await d.stop("SIGCONT");
    assert.equal(code, 78);
    assert.match(d.output(), /sipwarden\.yaml:2: policy\.allowlist\[1\]: expected an IP address or CIDR/);
  });
});
