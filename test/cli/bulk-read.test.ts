import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ChunkScanner, scanPath } from "../../src/cli/bulk-read.js";
import { isSipwardenError } from "../../src/core/errors.js";
import { ROUTE_DIRECT, ROUTE_NEEDLES, ROUTE_SKIP } from "../../src/parsers/index.js";

function collect(chunks: Buffer[], needles: string[], maxLineBytes?: number) {
  const got: [number, string][] = [];
  const s = new ChunkScanner({ needles, ...(maxLineBytes ? { maxLineBytes } : {}) }, (line, no) =>
    got.push([no, line]),
  );
  for (const c of chunks) s.push(c);
  return { got, stats: s.end() };
}

/** Reference: split naively, keep lines containing any needle. */
function naive(text: string, needles: string[]) {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const got: [number, string][] = [];
  lines.forEach((l, i) => {
    const line = l.endsWith("\r") ? l.slice(0, -1) : l;
    if (needles.length === 0 || needles.some((n) => l.includes(n))) got.push([i + 1, line]);
  });
  return { got, lines: lines.length };
}

describe("ChunkScanner", () => {
  it("delivers exactly the lines with a needle, with correct line numbers, whatever the chunking", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom("FAIL x", "ok", "", "héllo FAIL", "a\r", "PIKE b", "zzz"), fc.string()), {
          maxLength: 40,
        }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 10 }),
        fc.boolean(),
        (parts, cuts, trailingNewline) => {
          const text = parts.map((p) => p.replaceAll("\n", " ")).join("\n") + (trailingNewline ? "\n" : "");
          const bytes = Buffer.from(text, "utf8");
          const chunks: Buffer[] = [];
          let i = 0;
          let k = 0;
          while (i < bytes.length) {
            const n = cuts[k++ % cuts.length]!;
            chunks.push(bytes.subarray(i, i + n));
            i += n;
          }
          const needles = ["FAIL", "PIKE"];
          const want = naive(text, needles);
          const { got, stats } = collect(chunks, needles);
          assert.deepEqual(got, want.got);
          assert.equal(stats.lines, text === "" ? 0 : want.lines);
          assert.equal(stats.bytes, bytes.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("delivers every line when there are no needles", () => {
    const { got, stats } = collect([Buffer.from("a\nb\r\nc")], []);
    assert.deepEqual(got, [
      [1, "a"],
      [2, "b"],
      [3, "c"],
    ]);
    assert.equal(stats.lines, 3);
  });

  it("skips over-long lines and resynchronises at the next newline", () => {
    const long = "FAIL" + "x".repeat(5000);
    const { got, stats } = collect([Buffer.from(`FAIL 1\n${long}\nFAIL 3\n`)], ["FAIL"], 1000);
    assert.deepEqual(got, [
      [1, "FAIL 1"],
      [3, "FAIL 3"],
    ]);
    assert.equal(stats.skippedLong, 1);
  });

  it("skips a long line that arrives in pieces without buffering it whole", () => {
    const s = new ChunkScanner({ needles: ["FAIL"], maxLineBytes: 100 }, () => {});
    s.push(Buffer.from("FAIL" + "x".repeat(150)));
    s.push(Buffer.from("y".repeat(150)));
    s.push(Buffer.from("z\nFAIL ok\n"));
    const stats = s.end();
    assert.equal(stats.skippedLong, 1);
    assert.equal(stats.candidates, 1);
    assert.equal(stats.lines, 2);
  });

  it("decodes delivered lines as UTF-8 and survives invalid bytes", () => {
    const bytes = Buffer.concat([Buffer.from("FAIL ü "), Buffer.from([0xff, 0xfe]), Buffer.from("\n")]);
    const { got } = collect([bytes], ["FAIL"]);
    assert.equal(got.length, 1);
    assert.ok(got[0]![1].startsWith("FAIL ü "));
  });
});

describe("scanPath", () => {
  it("reads a file larger than one chunk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sw-bulk-"));
    const f = join(dir, "big.log");
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++)
      lines.push(i % 97 === 0 ? `line ${i} FAIL` : `line ${i} ordinary padding padding`);
    writeFileSync(f, lines.join("\n") + "\n");
    const got: number[] = [];
    const stats = await scanPath(f, { needles: ["FAIL"] }, (line, no) => {
      assert.equal(line, lines[no - 1]);
      got.push(no);
    });
    assert.equal(stats.lines, 200_000);
    assert.equal(got.length, Math.ceil(200_000 / 97));
  });

  it("reports an unreadable file with INPUT_READ", async () => {
    await assert.rejects(
      scanPath("/nonexistent/sipwarden.log", { needles: [] }, () => {}),
      (e: unknown) => isSipwardenError(e, "INPUT_READ") && /no such file/.test(e.message),
    );
  });
});

describe("ChunkScanner with a router", () => {
  it("SKIP lines are counted only, DIRECT lines delivered without the needle test, the rest as before", () => {
    // 'V…': skip; 'D…': direct; anything else: needles. UTF-8 and CRLF lines included.
    const route = (b: Uint8Array, s: number, e: number) =>
      e > s && b[s] === 0x56 ? ROUTE_SKIP : e > s && b[s] === 0x44 ? ROUTE_DIRECT : ROUTE_NEEDLES;
    fc.assert(
      fc.property(
        fc.array(
          fc.constantFrom(
            "V FAIL",
            "V ok",
            "N FAIL",
            "N ok",
            "",
            "N xFAILx",
            "V",
            "NFAIL",
            "D ok",
            "D FAIL é",
            "N FAIL jörg\r",
            "D\r",
          ),
          { maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 23 }),
        (parts, cut) => {
          const text = parts.join("\n") + "\n";
          const bytes = Buffer.from(text);
          const lines = text.split("\n").slice(0, -1);
          const want: [number, string, boolean][] = [];
          lines.forEach((l, i) => {
            const line = l.endsWith("\r") ? l.slice(0, -1) : l;
            if (line.startsWith("D")) want.push([i + 1, line, true]);
            else if (!line.startsWith("V") && line.includes("FAIL")) want.push([i + 1, line, false]);
          });
          const got: [number, string, boolean][] = [];
          const s = new ChunkScanner({ needles: ["FAIL"], route }, (line, no, direct) => got.push([no, line, direct]));
          for (let i = 0; i < bytes.length; i += cut) s.push(bytes.subarray(i, i + cut));
          const st = s.end();
          assert.deepEqual(got, want);
          assert.equal(st.lines, lines.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
