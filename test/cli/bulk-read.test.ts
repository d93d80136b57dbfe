import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout } from "node:timers/promises";
import * as zlib from "node:zlib";
import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { ChunkScanner, PartialReadError, scanPath, sniffInput } from "../../src/cli/bulk-read.js";
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

/** `tool -c` of `data` (the real compressor), or null when the tool is not installed. */
function compressWith(tool: string, data: Buffer): Buffer | null {
  const r = spawnSync(tool, ["-c"], { input: data, maxBuffer: 1 << 28 });
  return r.status === 0 ? r.stdout : null;
}

describe("scanPath: compressed and binary input", () => {
  const dir = mkdtempSync(join(tmpdir(), "sw-bulk-z-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // Over 1 MiB of text, so that both the compressed and the decompressed data cross chunk boundaries.
  const lines: string[] = [];
  for (let i = 0; i < 40_000; i++)
    lines.push(i % 13 === 0 ? `line ${i} FAIL ü` : `line ${i} ordinary ${"p".repeat(i % 50)}`);
  const text = Buffer.from(lines.join("\n") + "\n");

  async function scan(path: string) {
    const got: [number, string][] = [];
    const stats = await scanPath(path, { needles: ["FAIL"] }, (line, no) => got.push([no, line]));
    return { got, stats };
  }

  it("reads a gzip file (a rotated full.1.gz) exactly as the plain file", async () => {
    const plain = join(dir, "full");
    const gz = join(dir, "full.1.gz");
    writeFileSync(plain, text);
    writeFileSync(gz, gzipSync(text));
    const want = await scan(plain);
    const got = await scan(gz);
    assert.equal(want.got.length, Math.ceil(40_000 / 13));
    assert.deepEqual(got.got, want.got);
    assert.deepEqual(got.stats, want.stats);
    // Decompressed bytes are counted, as for the plain file.
    assert.equal(got.stats.bytes, text.length);
  });

  it("reads a gzip file of several members (files concatenated with cat) to the end", async () => {
    const half = lines.length / 2;
    const a = Buffer.from(lines.slice(0, half).join("\n") + "\n");
    const b = Buffer.from(lines.slice(half).join("\n") + "\n");
    const f = join(dir, "multi.gz");
    writeFileSync(f, Buffer.concat([gzipSync(a), gzipSync(b)]));
    const { got, stats } = await scan(f);
    assert.equal(stats.lines, lines.length);
    assert.equal(got.length, Math.ceil(40_000 / 13));
    assert.deepEqual(got.at(-1), [39_988 + 1, lines[39_988]]);
  });

  it("a gzip file cut short: PartialReadError with the lines read before the cut, which were delivered", async () => {
    const whole = gzipSync(text);
    const f = join(dir, "cut.gz");
    writeFileSync(f, whole.subarray(0, Math.floor(whole.length / 2)));
    const got: number[] = [];
    await assert.rejects(
      scanPath(f, { needles: ["FAIL"] }, (_l, no) => got.push(no)),
      (e: unknown) => {
        assert.ok(e instanceof PartialReadError, String(e));
        assert.equal(e.code, "INPUT_READ");
        assert.match(e.message, /gzip data is damaged or cut short: unexpected end of file \(after \d+ lines\)/);
        assert.ok(e.stats.lines > 1000 && e.stats.lines < lines.length, String(e.stats.lines));
        // Every delivered line is one the scanner counted, and in order.
        assert.ok(got.length > 0 && got.at(-1)! <= e.stats.lines);
        return true;
      },
    );
  });

  it("damaged gzip data (bytes overwritten in the middle): a clear INPUT_READ error, no crash", async () => {
    const bad = Buffer.from(gzipSync(text));
    bad.fill(0x55, 2000, 2400);
    const f = join(dir, "bad.gz");
    writeFileSync(f, bad);
    await assert.rejects(
      scan(f),
      (e: unknown) => isSipwardenError(e, "INPUT_READ") && /gzip data is damaged/.test(e.message),
    );
  });

  for (const [tool, kind, cat] of [
    ["xz", "xz", "xzcat"],
    ["bzip2", "bzip2", "bzcat"],
    ["lz4", "lz4", "lz4cat"],
  ] as const) {
    it(`a ${kind} file is refused with the command that reads it (${cat} … | sipwarden test -)`, async (t) => {
      const data = compressWith(tool, text);
      if (!data) return t.skip(`${tool} is not installed (scripts/install-test-deps.sh installs it)`);
      assert.equal(sniffInput(data.subarray(0, 10)), kind);
      const f = join(dir, `full.2.${kind}`);
      writeFileSync(f, data);
      const fds = readdirSync("/proc/self/fd").length;
      await assert.rejects(scan(f), (e: unknown) => {
        assert.ok(isSipwardenError(e, "INPUT_READ"));
        assert.ok(!(e instanceof PartialReadError));
        assert.equal(e.file, f);
        assert.equal(e.message, `compressed with ${kind}; read it through a pipe: ${cat} ${f} | sipwarden test -`);
        return true;
      });
      // The refused file's descriptor is closed (the stream that took it over is destroyed).
      for (let i = 0; i < 50 && readdirSync("/proc/self/fd").length > fds; i++) await setTimeout(10);
      assert.equal(readdirSync("/proc/self/fd").length, fds);
    });
  }

  it("zstd: decompressed where Node.js has zstd (22.15+), else refused with zstdcat", async (t) => {
    const data = compressWith("zstd", text);
    if (!data) return t.skip("zstd is not installed (scripts/install-test-deps.sh installs it)");
    assert.equal(sniffInput(data), "zstd");
    const f = join(dir, "full.3.zst");
    writeFileSync(f, data);
    if (typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === "function") {
      writeFileSync(join(dir, "plain3"), text);
      assert.deepEqual((await scan(f)).got, (await scan(join(dir, "plain3"))).got);
    } else {
      await assert.rejects(
        scan(f),
        (e: unknown) =>
          isSipwardenError(e, "INPUT_READ") && /zstd, which Node\.js .* cannot decompress.*zstdcat /.test(e.message),
      );
    }
  });

  it("a file name with spaces or quotes is quoted for the shell in the advice", async () => {
    const data = compressWith("xz", Buffer.from("x\n"));
    const f = join(dir, "it's here.xz");
    writeFileSync(f, data ?? Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0, 0, 0]));
    await assert.rejects(
      scan(f),
      (e: unknown) => isSipwardenError(e) && e.message.endsWith(`xzcat '${dir}/it'\\''s here.xz' | sipwarden test -`),
    );
  });

  it("what the magic numbers say; a text log, even one starting with NUL bytes (a crash), stays text", () => {
    const b = (...x: number[]) => Buffer.from(x);
    assert.equal(sniffInput(gzipSync(Buffer.from("x"))), "gzip");
    assert.equal(sniffInput(b(0x1f, 0x9d, 0x90, 0x78)), "compress");
    assert.equal(sniffInput(Buffer.from("LPKSHHRH\0\0\0\0")), "journal");
    assert.equal(sniffInput(Buffer.from("[May  4 09:01:02] NOTICE[1]")), "text");
    assert.equal(sniffInput(Buffer.alloc(10)), "text");
    assert.equal(sniffInput(Buffer.from("BZh9 is not a bzip2 header")), "text");
    assert.equal(sniffInput(b()), "text");
    assert.equal(sniffInput(b(0x1f)), "text");
  });

  it("an empty file and a file shorter than the magic numbers are read as text", async () => {
    writeFileSync(join(dir, "empty"), "");
    writeFileSync(join(dir, "short"), "FAIL\n");
    assert.equal((await scan(join(dir, "empty"))).stats.lines, 0);
    assert.deepEqual((await scan(join(dir, "short"))).got, [[1, "FAIL"]]);
  });
});
