/** Shared pieces of the kernel lab tests: settings, the crash child, listing helpers. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Enforcer, EnforceSettings } from "../../src/enforce/types.js";
import { ROOT } from "../helpers/paths.js";

export function settings(over: Partial<EnforceSettings> = {}): EnforceSettings {
  return {
    action: "drop",
    ports: [],
    protocols: ["udp", "tcp"],
    batchWindow: 2,
    conntrackFlush: true,
    table: "sipwarden",
    ...over,
  };
}

/**
 * Starts the crash child (bans 10.77.x.y one by one with a fixed expiry) and SIGKILLs it once
 * it reported at least `atLeast` bans. Returns how many it had reported.
 */
export async function crashMidway(
  backend: "nftables" | "ipset",
  netns: string,
  expiresAt: number,
  atLeast: number,
): Promise<number> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "test", "enforce", "crash-child.ts"), backend, netns, "5000", String(expiresAt)],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  let reported = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("crash child made no progress")), 60_000);
      createInterface({ input: child.stdout! }).on("line", (l) => {
        if (/^\d+$/.test(l)) reported = Number(l);
        if (reported >= atLeast || l === "done") {
          clearTimeout(t);
          resolve();
        }
      });
      child.on("exit", (code) => {
        clearTimeout(t);
        if (reported < atLeast) reject(new Error(`crash child exited early (${code})`));
      });
    });
  } finally {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await gone;
    }
  }
  return reported;
}

/** Bans as a map target → expiry, for exact comparisons. */
export async function listed(e: Enforcer): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  for (const b of await e.list()) {
    if (out.has(b.target)) throw new Error(`duplicate element ${b.target}`);
    out.set(b.target, b.expiresAt);
  }
  return out;
}

/** Lists until two reads 200 ms apart agree: a killed run's last command may still be landing. */
export async function quietListing(e: Enforcer): Promise<Map<string, number | null>> {
  let now = await listed(e);
  for (let prev = -1; prev !== now.size; ) {
    prev = now.size;
    await new Promise((r) => setTimeout(r, 200));
    now = await listed(e);
  }
  return now;
}
