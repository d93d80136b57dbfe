/**
 * Rotation: rename-and-create and copytruncate under a continuous writer, rotation while the
 * tail is stopped, deletion. The writer here behaves like a real logger: it appends with
 * O_APPEND and only reopens the path some writes after logrotate renamed the file.
 */
import assert from "node:assert/strict";
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { acknowledge, MemoryOffsetStore } from "../../src/sources/offsets.js";
import { diffExactlyOnce, numbered, RunningTail, sleep, tempDir, waitUntil } from "./file-tail-helpers.js";

let dir: string;
let cleanup: () => void;
const running: RunningTail[] = [];

function start(opts: ConstructorParameters<typeof RunningTail>[0]): RunningTail {
  const t = new RunningTail(opts);
  running.push(t);
  return t;
}

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.stop()));
  cleanup();
});

/** A logger process stand-in: appends lines, and reopens its file when told. */
class Writer {
  #fd: number;
  seq = 0;
  constructor(readonly path: string) {
    this.#fd = openSync(path, "a");
  }
  write(n: number): string[] {
    const ids: string[] = [];
    let s = "";
    for (let i = 0; i < n; i++) {
      const id = `L${this.seq++}`;
      ids.push(id);
      s += `${id} ${"x".repeat(this.seq % 37)}\n`;
    }
    writeSync(this.#fd, s);
    return ids;
  }
  reopen(): void {
    closeSync(this.#fd);
    this.#fd = openSync(this.path, "a");
  }
  close(): void {
    closeSync(this.#fd);
  }
}

/** logrotate's name shifting: full.N → full.N+1, …, full → full.1. */
function shift(path: string, keep = 50): void {
  for (let k = keep; k >= 1; k--) if (existsSync(`${path}.${k}`)) renameSync(`${path}.${k}`, `${path}.${k + 1}`);
}

function ids(t: RunningTail): string[] {
  return t.texts().map((x) => x.split(" ")[0]!);
}

async function renameUnderLoad(opts: { watch: boolean; chunkBytes?: number }): Promise<void> {
  const p = join(dir, "full");
  writeFileSync(p, "");
  const t = start({ paths: [p], fromStart: true, watch: opts.watch, pollMs: 40, chunkBytes: opts.chunkBytes });
  await waitUntil(() => t.tail.status().detail?.includes("@0") ?? false, "open");
  const w = new Writer(p);
  const expected: string[] = [];
  const total = 3000;
  let rotations = 0;
  for (let batch = 1; w.seq < total; batch++) {
    expected.push(...w.write(20));
    if (batch % 25 === 0) {
      shift(p);
      renameSync(p, `${p}.1`);
      expected.push(...w.write(7)); // still writing to the renamed file
      writeFileSync(p, ""); // logrotate's `create`
      expected.push(...w.write(5)); // ... and still, with an empty new file in place
      w.reopen();
      rotations++;
    }
    await sleep(1);
  }
  w.close();
  await t.waitCount(expected.length, 30_000);
  await sleep(200);
  const seen = ids(t);
  assert.deepEqual(diffExactlyOnce(seen, expected), { dup: [], missing: [], extra: [] });
  assert.deepEqual(seen, expected, "lines arrive in write order");
  assert.ok(rotations >= 5);
  // Every rotated file is finished once, whether seen at the path or found in between.
  assert.equal(t.logger.messages("info").filter((m) => m.startsWith("log file rotated")).length, rotations);
}

describe("file tail: rotation", () => {
  it("rename-and-create under load: every line exactly once, in order (inotify + poll)", async () => {
    await renameUnderLoad({ watch: true });
  });

  it("rename-and-create under load with polling only and small reads", async () => {
    await renameUnderLoad({ watch: false, chunkBytes: 97 });
  });

  it("copytruncate under load: every line exactly once when nothing is written between copy and truncate", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "");
    const t = start({ paths: [p], fromStart: true, pollMs: 40 });
    await waitUntil(() => t.tail.status().detail?.includes("@0") ?? false, "open");
    const w = new Writer(p);
    const expected: string[] = [];
    let rotations = 0;
    while (w.seq < 3000) {
      expected.push(...w.write(20));
      if (w.seq % 500 === 0) {
        shift(p);
        copyFileSync(p, `${p}.1`);
        truncateSync(p, 0);
        rotations++;
      }
      await sleep(1);
    }
    w.close();
    await t.waitCount(expected.length, 30_000);
    await sleep(200);
    const seen = ids(t);
    assert.deepEqual(diffExactlyOnce(seen, expected), { dup: [], missing: [], extra: [] });
    assert.deepEqual(seen, expected);
    assert.equal(rotations, 6);
  });

  it("copytruncate with writes between copy and truncate: only those lines may be lost, none doubled", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "");
    const t = start({ paths: [p], fromStart: true, pollMs: 40 });
    await waitUntil(() => t.tail.status().detail?.includes("@0") ?? false, "open");
    const w = new Writer(p);
    const sure: string[] = [];
    const window: string[] = [];
    while (w.seq < 2000) {
      sure.push(...w.write(20));
      if (w.seq % 400 === 0) {
        shift(p);
        copyFileSync(p, `${p}.1`);
        window.push(...w.write(3)); // logrotate's inherent gap: in neither file after the truncate
        await sleep(2);
        truncateSync(p, 0);
      }
      await sleep(1);
    }
    w.close();
    await t.waitCount(sure.length, 30_000);
    await sleep(300);
    const seen = ids(t);
    const d = diffExactlyOnce(seen, [...sure, ...window]);
    assert.deepEqual(d.dup, []);
    assert.deepEqual(d.extra, []);
    assert.deepEqual(
      d.missing.filter((m) => !window.includes(m)),
      [],
      "only lines written between copy and truncate may be missing",
    );
  });

  it("a rename rotation while stopped: the rest of the old file, then the new one", async () => {
    const p = join(dir, "full");
    writeFileSync(p, numbered("old", 0, 10));
    const offsets = new MemoryOffsetStore();
    const t = start({ paths: [p], fromStart: true, offsets });
    await t.waitCount(10);
    for (const r of t.records.slice(0, 7)) acknowledge(offsets, r);
    await t.stop();
    appendFileSync(p, numbered("old", 10, 3));
    shift(p);
    renameSync(p, `${p}.1`);
    writeFileSync(`${p}.1.gz`, "compressed files are never candidates");
    writeFileSync(p, numbered("new", 0, 4));
    const t2 = start({ paths: [p], fromStart: true, offsets });
    await t2.waitCount(10);
    await sleep(150);
    assert.deepEqual(t2.texts(), [
      ...["old7", "old8", "old9", "old10", "old11", "old12"],
      ...["new0", "new1", "new2", "new3"],
    ]);
  });

  it("two rotations while stopped: the old file under its shifted name, the file in between, then the new one", async () => {
    const p = join(dir, "full");
    writeFileSync(p, numbered("a", 0, 4));
    const offsets = new MemoryOffsetStore();
    const t = start({ paths: [p], fromStart: true, offsets });
    await t.waitCount(4);
    for (const r of t.records.slice(0, 2)) acknowledge(offsets, r);
    await t.stop();
    renameSync(p, `${p}.1`);
    writeFileSync(p, numbered("b", 0, 2));
    shift(p);
    renameSync(p, `${p}.1`);
    writeFileSync(p, numbered("c", 0, 2));
    writeFileSync(`${p}-debug`, "another log that only shares the name's start: never read\n");
    writeFileSync(`${p}.9`, "an older rotation, written before a: never read\n");
    const t9 = new Date(Date.now() - 3_600_000);
    utimesSync(`${p}.9`, t9, t9);
    const t2 = start({ paths: [p], fromStart: true, offsets });
    await t2.waitCount(6);
    await sleep(150);
    assert.deepEqual(t2.texts(), ["a2", "a3", "b0", "b1", "c0", "c1"]);
  });

  it("a copytruncate while stopped: the rest from the copy (found by its head), then the new content", async () => {
    const p = join(dir, "full");
    writeFileSync(p, numbered("old", 0, 10));
    const offsets = new MemoryOffsetStore();
    const t = start({ paths: [p], fromStart: true, offsets });
    await t.waitCount(10);
    for (const r of t.records.slice(0, 7)) acknowledge(offsets, r);
    await t.stop();
    appendFileSync(p, numbered("old", 10, 2));
    copyFileSync(p, `${p}.1`);
    truncateSync(p, 0);
    appendFileSync(p, numbered("fresh-content-", 0, 30));
    const t2 = start({ paths: [p], fromStart: true, offsets });
    await t2.waitCount(35);
    await sleep(150);
    assert.deepEqual(t2.texts().slice(0, 5), ["old7", "old8", "old9", "old10", "old11"]);
    assert.equal(t2.texts().length, 35);
    assert.equal(t2.texts()[5], "fresh-content-0");
  });

  it("a stored position whose inode now holds other content reads from the start", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "replaced content line one\nline two\n");
    const { dev, ino } = statSync(p);
    const offsets = new MemoryOffsetStore();
    // As if the old file were deleted and its inode reused: same dev/ino, other head.
    offsets.set(`file:${p}`, {
      kind: "file",
      dev: String(dev),
      ino: String(ino),
      offset: 9,
      headLen: 9,
      headHash: "0123456789abcdef",
    });
    const t = start({ paths: [p], offsets });
    await t.waitCount(2);
    assert.deepEqual(t.texts(), ["replaced content line one", "line two"]);
    assert.ok(t.logger.messages("info").some((m) => m.includes("another file")));
  });

  it("a stored position whose st_dev changed (remount, overlayfs) but whose inode and head match resumes", async () => {
    const p = join(dir, "full");
    writeFileSync(p, numbered("r", 0, 6));
    const offsets = new MemoryOffsetStore();
    const t = start({ paths: [p], fromStart: true, offsets });
    await t.waitCount(6);
    for (const r of t.records.slice(0, 4)) acknowledge(offsets, r);
    await t.stop();
    const pos = offsets.get(`file:${p}`);
    assert.ok(pos?.kind === "file");
    offsets.set(`file:${p}`, { ...pos, dev: String(BigInt(pos.dev) + 1n) });
    const t2 = start({ paths: [p], fromStart: true, offsets });
    await t2.waitCount(2);
    await sleep(150);
    assert.deepEqual(t2.texts(), ["r4", "r5"]);
  });

  it("a deleted and recreated file: the old partial line is delivered, the new file read from 0", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "");
    const t = start({ paths: [p] });
    await waitUntil(() => t.tail.status().detail?.includes("@0") ?? false, "open");
    appendFileSync(p, "a\nunterminated");
    await t.waitCount(1);
    unlinkSync(p);
    await waitUntil(() => t.tail.status().detail?.includes("waiting") ?? false, "the deleted file to be finished");
    writeFileSync(p, "c\n");
    await t.waitCount(3);
    assert.deepEqual(t.texts(), ["a", "unterminated", "c"]);
  });

  it("a glob does not pick up a rotated-away file again under its new name", async () => {
    const p = join(dir, "app");
    writeFileSync(p, "");
    const t = start({ paths: [join(dir, "app*")], pollMs: 30 });
    await waitUntil(() => t.tail.status().detail?.includes("app@0") ?? false, "open");
    appendFileSync(p, numbered("x", 0, 3));
    await t.waitCount(3);
    renameSync(p, `${p}.1`);
    writeFileSync(p, numbered("y", 0, 2));
    await t.waitCount(5);
    await sleep(300);
    assert.deepEqual(t.texts(), ["x0", "x1", "x2", "y0", "y1"]);
  });
});
