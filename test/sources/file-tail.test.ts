import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { Supervisor } from "../../src/core/supervisor.js";
import { FileTail, fileTailFromConfig } from "../../src/sources/file-tail.js";
import { acknowledge, decodePosition, MemoryOffsetStore } from "../../src/sources/offsets.js";
import { numbered, RunningTail, sleep, tempDir, waitUntil } from "./file-tail-helpers.js";

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

describe("file tail: reading", () => {
  it("starts at the end on a first run and reads appended lines with their positions", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "old 1\nold 2\n");
    const t = start({ paths: [p] });
    await waitUntil(() => t.tail.status().detail?.includes("@12") ?? false, "the tail to open the file at its end");
    appendFileSync(p, "new 1\nnew 2\n");
    await t.waitCount(2);
    assert.deepEqual(t.texts(), ["new 1", "new 2"]);
    const r = t.records[1]!;
    assert.equal(r.source, `file:${p}`);
    assert.equal(r.format, "auto");
    const pos = decodePosition(r.position!);
    assert.ok(pos?.kind === "file");
    assert.equal(pos.offset, 24, "position is the offset just after the line");
    assert.equal(pos.ino, String(statSync(p).ino));
    assert.equal(pos.headLen, 24, "the head hash covers every byte known so far (up to 1 KiB)");
  });

  it("reads the whole file with fromStart, and a later run from the stored position", async () => {
    const p = join(dir, "full");
    writeFileSync(p, numbered("a", 0, 5));
    const offsets = new MemoryOffsetStore();
    const t = start({ paths: [p], fromStart: true, offsets });
    await t.waitCount(5);
    assert.deepEqual(t.texts(), ["a0", "a1", "a2", "a3", "a4"]);
    // The daemon acknowledged only the first three: the last two are replayed, nothing else.
    for (const r of t.records.slice(0, 3)) acknowledge(offsets, r);
    await t.stop();
    appendFileSync(p, numbered("a", 5, 2));
    const t2 = start({ paths: [p], fromStart: true, offsets });
    await t2.waitCount(4);
    await sleep(150);
    assert.deepEqual(t2.texts(), ["a3", "a4", "a5", "a6"]);
  });

  it("with a skip test, skipped lines are only counted and their position is still committed", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "keep 0\nV 1\nkeep 2\nV 3\nV 4\n");
    const offsets = new MemoryOffsetStore();
    const skipLine = (b: Uint8Array, st: number, e: number) => e > st && b[st] === 0x56; /* 'V' */
    const t = start({ paths: [p], fromStart: true, offsets, skipLine });
    await waitUntil(() => t.records.some((r) => r.skipped !== undefined && r.position !== undefined), "a marker");
    assert.deepEqual(
      t.records.filter((r) => r.skipped === undefined).map((r) => r.text),
      ["keep 0", "keep 2"],
    );
    const markers = t.records.filter((r) => r.skipped !== undefined);
    assert.equal(
      markers.reduce((n, r) => n + r.skipped!, 0),
      3,
    );
    assert.ok(markers.every((r) => r.text === ""));
    // The last marker's position is the end of the file: acknowledging every record in order
    // commits it, so a restart reads only what is appended after.
    const last = decodePosition(t.records.at(-1)!.position!);
    assert.ok(last?.kind === "file");
    assert.equal(last.offset, statSync(p).size);
    for (const r of t.records) if (r.position !== undefined) acknowledge(offsets, r);
    await t.stop();
    appendFileSync(p, "V 5\nkeep 6\n");
    const t2 = start({ paths: [p], fromStart: true, offsets, skipLine });
    await t2.waitCount(1);
    await sleep(150);
    assert.deepEqual(
      t2.records.filter((r) => r.skipped === undefined).map((r) => r.text),
      ["keep 6"],
    );
  });

  it("remembers a first run at the end, so lines written while stopped are read", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "before\n");
    const offsets = new MemoryOffsetStore();
    const t = start({ paths: [p], offsets });
    await waitUntil(() => offsets.get(`file:${p}`) !== undefined, "the initial position to be stored");
    await t.stop();
    appendFileSync(p, "while stopped\n");
    const t2 = start({ paths: [p], offsets });
    await t2.waitCount(1);
    assert.deepEqual(t2.texts(), ["while stopped"]);
  });

  it("starting at the end keeps the unterminated last line and delivers it when complete", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "done\nhalf of a li");
    const t = start({ paths: [p] });
    await waitUntil(() => t.tail.status().detail?.includes("@5") ?? false, "the tail to open the file");
    appendFileSync(p, "ne\n");
    await t.waitCount(1);
    assert.deepEqual(t.texts(), ["half of a line"]);
  });

  it("holds a partial line until its newline arrives", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "");
    const t = start({ paths: [p] });
    await waitUntil(() => t.tail.status().detail?.includes("@0") ?? false, "open");
    appendFileSync(p, "first\nsec");
    await t.waitCount(1);
    // "first" proves that the read covering "sec" happened; wait a few polls more anyway.
    await sleep(200);
    assert.deepEqual(t.texts(), ["first"]);
    appendFileSync(p, "ond\n");
    await t.waitCount(2);
    assert.deepEqual(t.texts(), ["first", "second"]);
    assert.equal(decodePosition(t.records[1]!.position!)?.kind, "file");
    assert.match(t.records[1]!.position!, /:13$/);
  });

  it("accepts CRLF line ends and ignores empty lines", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "one\r\n\r\ntwo\r\n\n");
    const t = start({ paths: [p], fromStart: true });
    await t.waitCount(2);
    await sleep(100);
    assert.deepEqual(t.texts(), ["one", "two"]);
    assert.match(t.records[1]!.position!, /:12$/);
  });

  it("skips an over-long line with a warning and resynchronises at the next newline", async () => {
    const p = join(dir, "full");
    const exact = "x".repeat(256);
    const long = "y".repeat(10_000);
    writeFileSync(p, `before\n${long}\n${exact}\nafter\n`);
    // Small chunks: the long line spans many reads and is never buffered whole.
    const t = start({ paths: [p], fromStart: true, maxLineBytes: 256, chunkBytes: 100 });
    await t.waitCount(3);
    await sleep(100);
    assert.deepEqual(t.texts(), ["before", exact, "after"]);
    const warns = t.logger.entries.filter((e) => e.level === "warn");
    assert.equal(warns.length, 1);
    assert.deepEqual(warns[0]!.obj, { file: p, offset: 7, maxLineBytes: 256 });
  });

  it("decodes invalid UTF-8 as replacement characters without failing", async () => {
    const p = join(dir, "full");
    writeFileSync(p, Buffer.concat([Buffer.from("bad "), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from("\ngood é\n")]));
    const t = start({ paths: [p], fromStart: true });
    await t.waitCount(2);
    assert.deepEqual(t.texts(), ["bad \uFFFD\uFFFD\uFFFD", "good é"]);
  });

  it("waits for a missing file and reads it from the start when it appears", async () => {
    const p = join(dir, "later.log");
    const t = start({ paths: [p] });
    await waitUntil(() => t.logger.messages("info").includes("log file missing; waiting for it"), "the waiting notice");
    writeFileSync(p, "l1\nl2\n");
    await t.waitCount(2);
    assert.deepEqual(t.texts(), ["l1", "l2"]);
  });

  it("follows a glob and picks up a new matching file from its start", async () => {
    writeFileSync(join(dir, "a.log"), "a-old\n");
    writeFileSync(join(dir, "notes.txt"), "");
    const t = start({ paths: [join(dir, "*.log")] });
    await waitUntil(() => t.tail.status().detail?.includes("a.log@6") ?? false, "a.log to be opened");
    writeFileSync(join(dir, "b.log"), "b1\nb2\n");
    appendFileSync(join(dir, "notes.txt"), "not matched\n");
    appendFileSync(join(dir, "a.log"), "a-new\n");
    await t.waitCount(3);
    await sleep(150);
    assert.deepEqual(t.texts().sort(), ["a-new", "b1", "b2"]);
    assert.deepEqual(
      new Set(t.records.map((r) => r.source)),
      new Set([`file:${join(dir, "a.log")}`, `file:${join(dir, "b.log")}`]),
    );
    assert.equal(t.tail.id, `file:${join(dir, "*.log")}`);
  });

  it("works by polling alone when inotify is off", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "");
    const t = start({ paths: [p], watch: false, pollMs: 30 });
    await waitUntil(() => t.tail.status().detail?.includes("@0") ?? false, "open");
    appendFileSync(p, "polled\n");
    await t.waitCount(1);
    assert.deepEqual(t.texts(), ["polled"]);
  });

  it("stops cleanly: run resolves on abort and every file descriptor is released", async () => {
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, `f${i}.log`), "x\n");
    const t = new RunningTail({ paths: [join(dir, "*.log")], fromStart: true });
    await t.waitCount(3);
    await t.stop();
    await t.stop();
    assert.equal(fds(), before);
    assert.equal(t.tail.status().detail, `${t.tail.id} (stopped)`);
  });

  it("refuses to run twice at once and rejects wildcards in directories", async () => {
    const p = join(dir, "full");
    writeFileSync(p, "");
    const t = start({ paths: [p] });
    await assert.rejects(
      t.tail.run(() => {}, new AbortController().signal),
      (e) => isSipwardenError(e, "SOURCE_FAILED"),
    );
    assert.throws(
      () => new FileTail({ paths: [join(dir, "*", "x.log")] }),
      (e) => isSipwardenError(e, "CONFIG_INVALID"),
    );
    assert.throws(
      () => new FileTail({ paths: [] }),
      (e) => isSipwardenError(e, "CONFIG_INVALID"),
    );
  });

  it("fails its run (for the supervisor to restart) when a path cannot be read as a file", async () => {
    const p = join(dir, "adir");
    mkdirSync(p);
    const tail = new FileTail({ paths: [p], pollMs: 50 });
    await assert.rejects(
      tail.run(() => {}, new AbortController().signal),
      (e) => isSipwardenError(e, "SOURCE_FAILED"),
    );
  });

  it("runs under the supervisor: a broken source is restarted while a good one keeps delivering", async () => {
    const good = join(dir, "good.log");
    const broken = join(dir, "broken");
    writeFileSync(good, "");
    mkdirSync(broken);
    const texts: string[] = [];
    const sup = new Supervisor(
      [new FileTail({ paths: [good], pollMs: 50 }), new FileTail({ paths: [broken], pollMs: 50 })],
      (r) => texts.push(r.text),
      { backoff: { initialMs: 5, maxMs: 20, factor: 2, resetAfterMs: 60_000 } },
    );
    sup.start();
    try {
      await waitUntil(() => sup.restarts(`file:${broken}`) >= 3, "restarts of the broken source");
      appendFileSync(good, "still here\n");
      await waitUntil(() => texts.includes("still here"), "the good source's line");
      const h = Object.fromEntries(sup.health().map((x) => [x.id, x]));
      assert.equal(h[`file:${good}`]!.restarts, 0);
      assert.equal(h[`file:${good}`]!.state, "running");
      assert.match(h[`file:${broken}`]!.lastError ?? "", /^SOURCE_FAILED: file source failed: .*EISDIR/);
    } finally {
      await sup.stop();
    }
    assert.ok(sup.health().every((x) => x.state === "stopped"));
  });

  it("builds from a config entry", () => {
    const tail = fileTailFromConfig(
      { path: join(dir, "full"), format: "asterisk", fromStart: false, maxLineBytes: 1024 },
      { offsets: new MemoryOffsetStore() },
    );
    assert.equal(tail.id, `file:${join(dir, "full")}`);
  });
});
