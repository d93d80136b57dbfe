import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isSipwardenError } from "../../src/core/errors.js";
import { globToRegExp } from "../../src/sources/glob-watch.js";
import { LineSplitter } from "../../src/sources/line-splitter.js";
import {
  acknowledge,
  decodePosition,
  encodePosition,
  MemoryOffsetStore,
  type Position,
} from "../../src/sources/offsets.js";

interface Out {
  lines: [string, number][];
  overflows: number[];
}

function splitter(max: number, offset = 0): { s: LineSplitter; out: Out } {
  const out: Out = { lines: [], overflows: [] };
  const s = new LineSplitter(
    { maxLineBytes: max, onLine: (t, e) => out.lines.push([t, e]), onOverflow: (o) => out.overflows.push(o) },
    offset,
  );
  return { s, out };
}

/** The obvious whole-buffer reference the streaming splitter must agree with. */
function reference(bytes: Buffer, max: number, base = 0): Out {
  const out: Out = { lines: [], overflows: [] };
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(10, start);
    if (nl === -1) break;
    let e = nl;
    if (e > start && bytes[e - 1] === 13) e--;
    if (e - start > max) out.overflows.push(base + start);
    else if (e > start) out.lines.push([bytes.toString("utf8", start, e), base + nl + 1]);
    start = nl + 1;
  }
  // An unterminated tail is reported as soon as it cannot fit any more (max bytes plus a `\r`).
  if (bytes.length - start > max + 1) out.overflows.push(base + start);
  return out;
}

describe("line splitter", () => {
  it("matches a whole-buffer split for any chunking (property)", () => {
    const byte = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
      { weight: 2, arbitrary: fc.constant(10) },
      { weight: 1, arbitrary: fc.constant(13) },
      { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    );
    fc.assert(
      fc.property(
        fc.array(byte, { maxLength: 400 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (arr, cuts, max, base) => {
          const bytes = Buffer.from(arr);
          const { s, out } = splitter(max, base);
          let i = 0;
          let k = 0;
          while (i < bytes.length) {
            const n = Math.min(cuts[k++ % cuts.length]!, bytes.length - i);
            // Feed from inside a larger buffer, as the reader does with its reusable buffer.
            const wrapped = Buffer.concat([Buffer.from("\nJUNK"), bytes.subarray(i, i + n), Buffer.from("X\n")]);
            s.push(wrapped, 5, 5 + n);
            i += n;
          }
          const ref = reference(bytes, max, base);
          assert.deepEqual(out.lines, ref.lines);
          assert.deepEqual(out.overflows, ref.overflows);
          const lastNl = bytes.lastIndexOf(10);
          assert.equal(s.lineStart, base + lastNl + 1);
          assert.equal(s.readPos, base + bytes.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("flushes an unterminated line only when asked, with the end offset", () => {
    const { s, out } = splitter(100, 10);
    s.push(Buffer.from("a\nbc\r"), 0, 5);
    assert.deepEqual(out.lines, [["a", 12]]);
    assert.equal(s.pending, 3);
    s.flush();
    assert.deepEqual(out.lines, [
      ["a", 12],
      ["bc", 15],
    ]);
    assert.equal(s.lineStart, 15);
  });

  it("starting in skip mode discards up to the first newline", () => {
    const { s, out } = splitter(100);
    s.reset(50, true);
    s.push(Buffer.from("tail of something\nnext\n"), 0, 23);
    assert.deepEqual(out.lines, [["next", 73]]);
  });

  it("reports a too-long line once even when it arrives in many pieces", () => {
    const { s, out } = splitter(8);
    for (let i = 0; i < 20; i++) s.push(Buffer.from("abcdefgh"), 0, 8);
    s.push(Buffer.from("\nok\n"), 0, 4);
    assert.deepEqual(out.overflows, [0]);
    assert.deepEqual(out.lines, [["ok", 164]]);
  });
});

describe("line splitter with a byte-level skip test", () => {
  const skip = (b: Uint8Array, st: number, e: number) => e > st && b[st] === 0x56; /* 'V' */
  it("delivers the lines it does not skip, counts the others and never moves a position back (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("V skip me", "keep", "Vx", "k", "", "keep\r", "VVV"), { maxLength: 50 }),
        fc.integer({ min: 1, max: 17 }),
        (parts, cut) => {
          const bytes = Buffer.from(parts.map((p) => `${p}\n`).join(""));
          const ref = reference(bytes, 64);
          const want = ref.lines.filter(([t]) => !t.startsWith("V"));
          const lines: [string, number][] = [];
          let skipped = 0;
          // Every position the consumer would commit, in order: it must never decrease, and
          // the last one must be the end of the last line (delivered or skipped).
          const committed: number[] = [];
          const s = new LineSplitter({
            maxLineBytes: 64,
            onLine: (t, e) => {
              lines.push([t, e]);
              committed.push(e);
            },
            onOverflow: () => {},
            skip,
            onSkipped: (n, e) => {
              skipped += n;
              if (e >= 0) committed.push(e);
            },
          });
          for (let i = 0; i < bytes.length; i += cut) s.push(bytes, i, Math.min(bytes.length, i + cut));
          // A line that arrives in pieces goes through the carry and is delivered, not skipped
          // (the parser then rejects it): every line is either delivered or counted, once.
          assert.deepEqual(
            lines.filter(([t]) => !t.startsWith("V")),
            want,
          );
          assert.equal(lines.length + skipped, ref.lines.length);
          if (cut >= bytes.length) assert.deepEqual(lines, want);
          for (let i = 1; i < committed.length; i++) assert.ok(committed[i]! > committed[i - 1]!, "position went back");
          const lastNonEmpty = ref.lines.at(-1);
          if (lastNonEmpty && cut >= bytes.length) {
            // Past the last line that holds anything (and past empty lines after a skipped one).
            assert.ok(committed.at(-1)! >= lastNonEmpty[1] && committed.at(-1)! <= bytes.length);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("positions", () => {
  it("encode and decode both kinds", () => {
    const file: Position = {
      kind: "file",
      dev: "18446744073709551615",
      ino: "9007199254740993",
      offset: 123456789,
      headLen: 1024,
      headHash: "00ff00ff00ff00ff",
    };
    assert.deepEqual(decodePosition(encodePosition(file)), file);
    const cur: Position = { kind: "cursor", cursor: "s=abc;i=1;b=def;m=1;t=2;x=3" };
    assert.deepEqual(decodePosition(encodePosition(cur)), cur);
    assert.equal(decodePosition("f1:1:2:3:zz:4"), null);
    assert.equal(decodePosition("c1:"), null);
    assert.equal(decodePosition("garbage"), null);
  });

  it("acknowledge stores a record's position under its source, and refuses a malformed one", () => {
    const store = new MemoryOffsetStore();
    acknowledge(store, { source: "file:/x", position: "f1:1:2:0::7" });
    acknowledge(store, { source: "file:/x" });
    assert.deepEqual(store.get("file:/x"), { kind: "file", dev: "1", ino: "2", headLen: 0, headHash: "", offset: 7 });
    assert.throws(
      () => acknowledge(store, { source: "file:/x", position: "nope" }),
      (e) => isSipwardenError(e, "SOURCE_FAILED"),
    );
    assert.equal(store.entries().length, 1);
  });
});

describe("glob matcher", () => {
  it("handles *, ? and classes in one component", () => {
    assert.ok(globToRegExp("*.log").test("full.log"));
    assert.ok(!globToRegExp("*.log").test("full.log.1"));
    assert.ok(globToRegExp("messages-??").test("messages-01"));
    assert.ok(!globToRegExp("messages-??").test("messages-1"));
    assert.ok(globToRegExp("node[0-9].log").test("node7.log"));
    assert.ok(!globToRegExp("node[!0-9].log").test("node7.log"));
    assert.ok(globToRegExp("a+b(c).log").test("a+b(c).log"));
    assert.ok(!globToRegExp("a.log").test("aXlog"));
  });
});
