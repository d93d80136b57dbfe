/**
 * The daemon with the real nftables backend, inside a network namespace the test creates:
 * appended attack lines put the attacker into the kernel set, and a restart after SIGKILL
 * reconciles the kernel with the store (the ban is there once, not twice).
 */
import assert from "node:assert/strict";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type DaemonProc,
  pjsipFailure,
  startDaemon,
  tempDir,
  UTC_CONFIG,
  waitFor,
  writeConfig,
} from "../helpers/daemon-proc.js";
import { createLab, labSkip } from "../helpers/netns.js";

const skip = labSkip(["nft", "conntrack"]);

describe("daemon with nftables in a namespace", { timeout: 180_000, skip }, () => {
  it("bans into the kernel set and restores after SIGKILL without duplicates", async () => {
    const lab = await createLab({ nodes: [{ name: "pbx", addrs: ["203.0.113.10/24"] }] });
    let d: DaemonProc | null = null;
    try {
      const ns = lab.ns("pbx");
      const dir = tempDir();
      const log = join(dir, "full");
      writeFileSync(log, "");
      const cfg = writeConfig(dir, UTC_CONFIG);
      const args = ["-c", cfg, "--log", log, "--format", "asterisk", "--backend", "nftables"];
      const setHas = async (ip: string) => {
        const r = await lab.exec("pbx", ["nft", "-j", "list", "table", "inet", "sipwarden"], { allowFail: true });
        return r.code === 0 && r.stdout.split(`"${ip}"`).length - 1;
      };
      d = await startDaemon({ dir, args, wrap: ["ip", "netns", "exec", ns] });
      for (let i = 0; i < 5; i++) appendFileSync(log, pjsipFailure("198.51.100.31", i) + "\n");
      await waitFor("the address in the nft set", () => setHas("198.51.100.31"));
      assert.equal((await d.bans())[0]?.ip, "198.51.100.31");
      await d.stop("SIGKILL");
      // Make the kernel disagree with the store: remove the element, add a stray one.
      await lab.exec("pbx", ["nft", "flush", "set", "inet", "sipwarden", "addr4"]);
      await lab.exec("pbx", ["nft", "add", "element", "inet", "sipwarden", "addr4", "{ 198.51.100.99 }"]);
      d = await startDaemon({ dir, args, wrap: ["ip", "netns", "exec", ns] });
      await waitFor("reconcile", async () => (await setHas("198.51.100.31")) === 1);
      assert.equal(await setHas("198.51.100.99"), 0, "the stray element was not removed");
      assert.equal(await setHas("198.51.100.31"), 1, "exactly once");
      await d.stop();
      d = null;
    } finally {
      await d?.stop("SIGKILL");
      await lab.cleanup();
    }
  });
});
