/**
 * An attacker's InvalidPassword events arrive over AMI (from the protocol-faithful fake
 * Asterisk) and the live daemon bans the attacker.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { FakeAmiServer, securityEvent } from "../helpers/ami-server.js";
import { type DaemonProc, startDaemon, tempDir, waitFor, writeConfig } from "../helpers/daemon-proc.js";

let daemon: DaemonProc | null = null;
let ami: FakeAmiServer | null = null;
after(async () => {
  await daemon?.stop("SIGKILL");
  await ami?.close();
});

function invalidPassword(ip: string, n: number): string {
  return securityEvent("InvalidPassword", [
    ["EventTV", new Date().toISOString().replace("Z", "+0000")],
    ["Severity", "Error"],
    ["Service", "SIP"],
    ["EventVersion", "2"],
    ["AccountID", "1001"],
    ["SessionID", `0x7f3b9c02a1${n.toString(16).padStart(2, "0")}`],
    ["LocalAddress", "IPV4/UDP/203.0.113.10/5060"],
    ["RemoteAddress", `IPV4/UDP/${ip}/5070`],
    ["Challenge", "3e1b2a40"],
    ["ReceivedChallenge", "3e1b2a40"],
    ["ReceivedHash", "b9fd7b8fde27390bae3742b844d8bca9"],
  ]);
}

describe("daemon with an AMI source", { timeout: 120_000 }, () => {
  it("bans an attacker whose failed logins arrive as AMI InvalidPassword events", async () => {
    ami = await FakeAmiServer.start({ users: { ips: { secret: "s3cret", read: "security" } } });
    const dir = tempDir();
    const cfg = writeConfig(dir, "time: { zone: UTC }\n");
    daemon = await startDaemon({
      dir,
      args: ["-c", cfg, "--backend", "dry-run", "--ami", `ami://ips:s3cret@127.0.0.1:${ami.port}`],
    });
    await waitFor("the AMI login", () => ami!.subscribers.length > 0);
    const st = await daemon.status();
    assert.ok(
      st.sources.some((s) => s.id.startsWith("ami:")),
      JSON.stringify(st.sources),
    );
    for (let i = 0; i < 5; i++) ami.broadcast(invalidPassword("198.51.100.23", i));
    const bans = await waitFor("the ban", async () => {
      const b = await daemon!.bans();
      return b.some((x) => x.ip === "198.51.100.23") ? b : null;
    });
    assert.equal(bans.find((b) => b.ip === "198.51.100.23")!.rule, "sip-auth-bruteforce");
    await daemon.stop();
    daemon = null;
  });
});
