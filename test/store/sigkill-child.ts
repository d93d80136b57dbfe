/**
 * Child process of sigkill.test.ts (not a test itself): adds bans in a loop and prints each target
 * right after the write returned, i.e. once the ban counts as "reported as applied". The parent
 * kills this process with SIGKILL at a random moment.
 *
 * Usage: node --import tsx sigkill-child.ts <stateDir> <single|batch>
 */
import { openSqliteStore } from "../../src/store/sqlite.js";

const [dir, mode] = process.argv.slice(2);
if (!dir || (mode !== "single" && mode !== "batch")) {
  process.stderr.write("usage: sigkill-child.ts <stateDir> <single|batch>\n");
  process.exit(64);
}
const store = openSqliteStore(dir);
const since = Date.UTC(2024, 4, 1);
// Bounded: the parent kills us long before this, and the loop ends anyway if it does not.
const LIMIT = 60_000;

function target(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function newBan(i: number) {
  return { target: target(i), rule: "sigkill", reason: `ban ${i}`, source: "rule" as const, since, expiresAt: null };
}

// Pipes are written synchronously on Linux, so a printed line has left this process.
if (mode === "single") {
  for (let i = 0; i < LIMIT; i++) {
    store.addBan(newBan(i));
    process.stdout.write(`${target(i)}\n`);
  }
} else {
  for (let i = 0; i < LIMIT; i += 10) {
    store.commitBatch(() => {
      for (let k = i; k < i + 10; k++) store.addBan(newBan(k));
      store.setOffset("file:/var/log/asterisk/full", String(i + 10));
    });
    let out = "";
    for (let k = i; k < i + 10; k++) out += `${target(k)}\n`;
    process.stdout.write(out);
  }
}
store.close();
