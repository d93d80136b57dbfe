/**
 * A SIGKILL at any moment loses no ban that was already reported as applied. The child adds bans
 * and prints each target after the store returned; we kill it at a random moment, reopen the
 * database and look for every printed target.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { openSqliteStore } from "../../src/store/sqlite.js";

const CHILD = join(import.meta.dirname, "sigkill-child.ts");
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Run {
  printed: string[];
  signal: NodeJS.Signals | null;
}

function runAndKill(dir: string, mode: "single" | "batch", delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, mode], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let armed = false;
    // Bounded in time even if the child never prints.
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (!armed) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.stderr.on("data", (chunk: string) => {
      err += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      if (signal !== "SIGKILL") {
        reject(new Error(`child ended with code ${code} before it was killed: ${err}`));
        return;
      }
      // A line cut by the kill is not complete and was never fully reported.
      const lines = out.split("\n");
      lines.pop();
      resolve({ printed: lines, signal });
    });
  });
}

for (const mode of ["single", "batch"] as const) {
  test(`SIGKILL during ${mode} addBan loses no reported ban`, async () => {
    for (let round = 0; round < 4; round++) {
      const dir = mkdtempSync(join(tmpdir(), "sipwarden-sigkill-"));
      dirs.push(dir);
      const delay = Math.floor(Math.random() * 150);
      const { printed } = await runAndKill(dir, mode, delay);
      assert.ok(printed.length > 0, "the child reported at least one ban");
      const store = openSqliteStore(dir);
      try {
        const stored = new Set(store.activeBans(0).map((b) => b.target));
        const missing = printed.filter((t) => !stored.has(t));
        assert.deepEqual(missing, [], `round ${round} (kill after ${delay} ms, ${printed.length} printed)`);
        assert.ok(stored.size >= printed.length);
        if (mode === "batch") {
          // The offset committed with the bans of its batch: never behind what was printed.
          const offset = Number(store.getOffset("file:/var/log/asterisk/full"));
          assert.ok(offset >= printed.length && offset === stored.size, `offset ${offset}, bans ${stored.size}`);
        }
      } finally {
        store.close();
      }
    }
  });
}
