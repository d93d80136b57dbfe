/**
 * copytruncate at the worst moments, made deterministic: the follower logs "next file chosen"
 * (debug) between choosing the successor of a finished file and reading it, and the test's
 * logger rotates the file right there, synchronously, so nothing of the follower runs in
 * between. Every line must still be read exactly once, in order.
 */
import assert from "node:assert/strict";
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { FileFollower } from "../../src/sources/file-follower.js";
import { findNext, hashHead } from "../../src/sources/file-identity.js";
import { MemoryOffsetStore } from "../../src/sources/offsets.js";
import type { RawRecord } from "../../src/sources/types.js";
import { CaptureLogger, diffExactlyOnce, numbered, sleep, tempDir, waitUntil } from "./file-tail-helpers.js";

let dir: string;
let cleanup: () => void;
let controller: AbortController;
const followers: FileFollower[] = [];

beforeEach(() => {
  ({ dir, cleanup } = tempDir("sipwarden-race-"));
  controller = new AbortController();
});
afterEach(async () => {
  controller.abort();
  await Promise.all(followers.splice(0).map((f) => f.close()));
  cleanup();
});

/** A logger that runs `onChosen` (once per registration) when the follower has chosen a file. */
class HookLogger extends CaptureLogger {
  onChosen: ((obj: { headBytes: number }) => void) | null = null;
  override debug(obj: object, msg?: string): void {
    super.debug(obj, msg);
    if (msg === "next file chosen" && this.onChosen) {
      const f = this.onChosen;
      this.onChosen = null;
      f(obj as { headBytes: number });
    }
  }
}

function follow(path: string): { f: FileFollower; records: RawRecord[]; logger: HookLogger; errors: unknown[] } {
  const records: RawRecord[] = [];
  const errors: unknown[] = [];
  const logger = new HookLogger();
  const f = new FileFollower({
    path,
    key: `file:${path}`,
    format: "auto",
    maxLineBytes: 65_536,
    chunkBytes: 4096,
    backlogChunkBytes: 4096,
    offsets: new MemoryOffsetStore(),
    initial: "start",
    emit: (r) => records.push(r),
    logger,
    now: Date.now,
    signal: controller.signal,
    onError: (e) => errors.push(e),
  });
  followers.push(f);
  return { f, records, logger, errors };
}

/** logrotate's copytruncate with its name shifting: full.N → full.N+1, copy full → full.1, truncate. */
function copytruncate(path: string): void {
  for (let k = 20; k >= 1; k--) if (existsSync(`${path}.${k}`)) renameSync(`${path}.${k}`, `${path}.${k + 1}`);
  copyFileSync(path, `${path}.1`);
  truncateSync(path, 0);
}

async function drainUntil(f: FileFollower, records: RawRecord[], n: number): Promise<void> {
  await waitUntil(() => {
    f.wake();
    return records.length >= n;
  }, `${n} records (have ${records.length})`);
  await sleep(100); // a duplicate, if any, would land now
  f.wake();
  await sleep(50);
}

/** The lines of generations g0 … g{n-1}, 10 lines each, as `numbered` writes them. */
function generations(n: number): string[] {
  return Array.from({ length: n }, (_, g) => numbered(`g${g}-`, 0, 10).trim().split("\n")).flat();
}

/** `full` holding generation g0, followed and read to its end. */
async function startOnFirstGeneration(): Promise<ReturnType<typeof follow> & { p: string }> {
  const p = join(dir, "full");
  writeFileSync(p, numbered("g0-", 0, 10));
  const followed = follow(p);
  await drainUntil(followed.f, followed.records, 10);
  return { p, ...followed };
}

/** Deletes `full` and creates it again empty: the follower finishes the old file and chooses a file with no head. */
function recreateEmpty(p: string): void {
  unlinkSync(p);
  writeFileSync(p, "");
}

/** Writes g1 into the (empty) file, copies and truncates it away, then writes g2. */
function generationCopiedAway(p: string): void {
  appendFileSync(p, numbered("g1-", 0, 10));
  copytruncate(p);
  appendFileSync(p, numbered("g2-", 0, 10));
}

function assertExactly(records: RawRecord[], expected: string[]): void {
  const seen = records.map((r) => r.text);
  assert.deepEqual(diffExactlyOnce(seen, expected), { dup: [], missing: [], extra: [] });
  assert.deepEqual(seen, expected);
}

describe("file follower: copytruncate races", () => {
  it("a copytruncate between choosing the next file and its first read: the copy is read first", async () => {
    const { p, f, records, logger, errors } = await startOnFirstGeneration();
    copytruncate(p);
    appendFileSync(p, numbered("g1-", 0, 10));
    // The follower reads the rest of g0 from full.1, then chooses full (holding g1) by its
    // head; before it reads a byte, g1 is copied away and truncated, and g2 written.
    let chosenWith = -1;
    logger.onChosen = ({ headBytes }) => {
      chosenWith = headBytes;
      copytruncate(p);
      appendFileSync(p, numbered("g2-", 0, 10));
    };
    await drainUntil(f, records, 30);
    assert.ok(chosenWith > 0, "the file was chosen with its head known");
    assertExactly(records, generations(3));
    assert.deepEqual(errors, []);
  });

  it("a file chosen while empty, then written, copied and truncated before its first read", async () => {
    const { p, f, records, logger, errors } = await startOnFirstGeneration();
    recreateEmpty(p);
    let chosenWith = -1;
    logger.onChosen = ({ headBytes }) => {
      chosenWith = headBytes;
      generationCopiedAway(p);
    };
    await drainUntil(f, records, 30);
    assert.equal(chosenWith, 0, "the file was empty when chosen");
    assertExactly(records, generations(3));
    assert.deepEqual(errors, []);
  });

  it("an empty new file the follower waits on, then a whole generation copied and truncated before the next look", async () => {
    const { p, f, records, logger, errors } = await startOnFirstGeneration();
    recreateEmpty(p);
    await waitUntil(() => {
      f.wake();
      return logger.entries.some(
        (e) => e.msg === "next file chosen" && (e.obj as { headBytes: number }).headBytes === 0,
      );
    }, "the empty new file to be chosen");
    await sleep(100); // and looked at: it is empty
    // No wake-up between these: the follower's next look finds g2 where it left an empty file.
    generationCopiedAway(p);
    await drainUntil(f, records, 30);
    assertExactly(records, generations(3));
    // And the follower goes on normally afterwards: appends, then another ordinary rotation.
    appendFileSync(p, numbered("g2-", 10, 5));
    copytruncate(p);
    appendFileSync(p, numbered("g3-", 0, 5));
    await drainUntil(f, records, 40);
    assert.deepEqual(
      records.slice(30).map((r) => r.text),
      [...numbered("g2-", 10, 5).trim().split("\n"), ...numbered("g3-", 0, 5).trim().split("\n")],
    );
    assert.deepEqual(errors, []);
  });
});

describe("findNext: retired files", () => {
  it("a finished file's reused inode is a new file when its head differs", async () => {
    const p = join(dir, "full");
    writeFileSync(`${p}.1`, "a new generation in a reused inode\n");
    writeFileSync(p, "the current file\n");
    const st = statSync(`${p}.1`, { bigint: true });
    const inode = `${st.dev}:${st.ino}`;
    const old = Buffer.from("the finished file's own first line\n");
    const after = { mtimeNs: 0n, head: { len: 0, hash: hashHead(old, 0) } };
    // Retired with another head: the file under that inode now is not the finished one.
    const reused = await findNext(p, after, new Map([[inode, { len: old.length, hash: hashHead(old, old.length) }]]));
    assert.equal(reused?.name, "full.1");
    await reused?.fh.close();
    // Retired with its own head: it is the finished file, and the file at the path comes next.
    const own = Buffer.from("a new generation in a reused inode\n");
    const same = await findNext(p, after, new Map([[inode, { len: own.length, hash: hashHead(own, own.length) }]]));
    assert.equal(same?.name, "full");
    assert.equal(same?.atPath, true);
    assert.equal(same?.head.toString(), "the current file\n");
    await same?.fh.close();
  });
});
