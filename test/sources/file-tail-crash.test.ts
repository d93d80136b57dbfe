/**
 * The exactness proof: a child process tails a file that is appended to (and rotated)
 * continuously, and is SIGKILLed at random moments several times. Each child commits a
 * record's effect (its text) and its position in one SQLite transaction, as the daemon does.
 * After the last restart the processed lines must equal the written lines: none missing, none
 * twice, in order. The seed is printed; rerun a failure with SIPWARDEN_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  renameSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { type Sqlite, sqlite } from "../../src/store/sqlite-driver.js";
import { ROOT } from "../helpers/paths.js";
import { diffExactlyOnce, sleep, tempDir, waitUntil } from "./file-tail-helpers.js";

const Database = sqlite();

const CHILD = join(ROOT, "test", "sources", "file-tail-crash-child.ts");
/** Batches (25 lines, ~20 ms apart) between rename rotations; lower it to hunt races. */
const ROTATE_EVERY = Number(process.env.SIPWARDEN_CRASH_ROTATE ?? 15);

/** Small seeded PRNG (mulberry32) so a failing schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

async function crashRun(mode: "rename" | "copytruncate"): Promise<void> {
  const seed = Number(process.env.SIPWARDEN_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`# crash test seed ${seed}`);
  const rand = prng(seed);
  const { dir, cleanup } = tempDir("sipwarden-crash-");
  const log = join(dir, "full");
  const dbPath = join(dir, "state.db");
  writeFileSync(log, "");
  let child: ChildProcess | null = null;
  const ready = new WeakMap<object, Promise<void>>();
  const spawnChild = () => {
    const c = spawn(process.execPath, ["--import", "tsx", CHILD, dbPath, log], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    ready.set(c, new Promise<void>((resolve) => c.stdout!.once("data", () => resolve())));
    c.stdout!.resume();
    return c;
  };
  // Opened lazily, once the child has created the database.
  const db: { reader: Sqlite.Database | null } = { reader: null };
  const count = () => {
    try {
      db.reader ??= existsSync(dbPath) ? new Database(dbPath, { readonly: true, fileMustExist: true }) : null;
      return (db.reader?.prepare("SELECT count(*) AS n FROM processed").get() as { n: number } | undefined)?.n ?? 0;
    } catch {
      return 0; // the child has not created the tables yet
    }
  };
  const hasOffset = () => {
    try {
      db.reader ??= existsSync(dbPath) ? new Database(dbPath, { readonly: true, fileMustExist: true }) : null;
      return db.reader?.prepare("SELECT 1 FROM offsets").get() !== undefined;
    } catch {
      return false;
    }
  };
  try {
    child = spawnChild();
    // The first child records where it starts before any line is written: from then on the
    // committed offsets alone decide what is read.
    await waitUntil(hasOffset, "the first child to store its initial position", 30_000);

    const written: string[] = [];
    let writing = true;
    const writer = (async () => {
      let fd = openSync(log, "a");
      let seq = 0;
      for (let batch = 1; batch <= 360; batch++) {
        let s = "";
        for (let i = 0; i < 25; i++) {
          const id = `L${seq++}`;
          written.push(id);
          s += `${id} payload-${"z".repeat(seq % 29)}\n`;
        }
        writeSync(fd, s);
        if (batch % ROTATE_EVERY === 0) {
          for (let k = 400; k >= 1; k--) if (existsSync(`${log}.${k}`)) renameSync(`${log}.${k}`, `${log}.${k + 1}`);
          if (mode === "rename") {
            renameSync(log, `${log}.1`);
            writeFileSync(log, "");
            closeSync(fd);
            fd = openSync(log, "a");
          } else {
            // logrotate's copytruncate, with no write between the copy and the truncate: the
            // writer keeps its O_APPEND descriptor and continues at the new end.
            copyFileSync(log, `${log}.1`);
            truncateSync(log, 0);
          }
        }
        await sleep(20);
      }
      closeSync(fd);
      writing = false;
    })();

    // Kill only once the child is working, at a random moment of its burst: a kill during
    // start-up would prove little.
    const atKill: { processed: number; written: number }[] = [];
    while (writing || atKill.length < 6) {
      const before = count();
      await waitUntil(() => count() > before || !writing, "the child to process something", 30_000);
      await sleep(Math.floor(rand() * 120));
      child.kill("SIGKILL");
      await exited(child);
      atKill.push({ processed: count(), written: written.length });
      child = spawnChild();
    }
    await writer;
    try {
      await waitUntil(() => count() >= written.length, `all ${written.length} lines to be processed`, 60_000);
    } catch (e) {
      const { readdirSync, statSync } = await import("node:fs");
      console.log("count", count(), db.reader!.prepare("SELECT * FROM offsets").all());
      for (const f of readdirSync(dir)) console.log(f, statSync(join(dir, f)).ino, statSync(join(dir, f)).size);
      const rows = db.reader!.prepare("SELECT line FROM processed ORDER BY seq").all() as { line: string }[];
      const d = diffExactlyOnce(
        rows.map((r) => r.line.split(" ")[0]!),
        written,
      );
      console.log("missing", d.missing.length, d.missing.slice(0, 5), "dup", d.dup.length, d.dup.slice(0, 5));
      throw e;
    }
    await sleep(300); // a duplicate, if any, would land now
    await ready.get(child); // a child still starting up would die of SIGTERM instead of stopping
    child.kill("SIGTERM");
    await exited(child);
    assert.equal(child.exitCode, 0, "the last child stops cleanly on SIGTERM");

    const rows = db.reader!.prepare("SELECT line, pid FROM processed ORDER BY seq").all() as {
      line: string;
      pid: number;
    }[];
    const seen = rows.map((r) => r.line.split(" ")[0]!);
    console.log(`# kills (processed/written): ${atKill.map((k) => `${k.processed}/${k.written}`).join(" ")}`);
    assert.deepEqual(diffExactlyOnce(seen, written), { dup: [], missing: [], extra: [] });
    assert.deepEqual(seen, written, "processed in write order");
    const lifetimes = new Set(rows.map((r) => r.pid)).size;
    assert.ok(atKill.length >= 6 && lifetimes >= 4, `work spread over ${lifetimes} child lifetimes`);
    const midStream = atKill.filter((k, i) => k.processed > (atKill[i - 1]?.processed ?? 0) && k.processed < k.written);
    assert.ok(midStream.length >= 3, "at least three kills landed while the child was working with a backlog");
  } finally {
    db.reader?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited(child);
    }
    cleanup();
  }
}

it("SIGKILL at random points with rename rotations: processed lines equal written lines exactly", async () => {
  await crashRun("rename");
});

it("SIGKILL at random points with copytruncate rotations: processed lines equal written lines exactly", async () => {
  await crashRun("copytruncate");
});
