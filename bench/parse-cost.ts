/**
 * `npm run bench:parse-cost`: what one line costs `sipwarden test`, in CPU instructions rather than
 * milliseconds. A diagnostic for parser work: instruction counts do not change with the shared
 * machine's speed, which moves wall-clock figures by up to 2× within an hour (BENCHMARKS.md, "Parse").
 *
 * It splits bench:parse's log into its attack lines and its ordinary lines (by what the parsers
 * make of each line), then runs the compiled parse path (dist/) in a child process under
 * valgrind's cachegrind, once with 2 passes over a file and once with 4. Half the difference is
 * one warm pass (JIT-compiled code, no start-up). Stages:
 *   - `scan`: find the lines in the file's bytes (read beforehand), route them, decode the candidates;
 *   - `parse`: the same, plus the parsers;
 *   - `report`: the same, plus the `sipwarden test` report (TestReport.add).
 * V8 runs single-threaded (`--single-threaded`), so the count is the main thread's work on a warm
 * pass; a cold process adds V8's compiling, which this diagnostic leaves out.
 *
 * Needs valgrind (not installed by the test set-up: `apt-get install valgrind`) and `npm run build`.
 * Options (env): BENCH_LINES (default 1000000, the bench:parse log).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { generateAsteriskLog } from "./gen-asterisk-log.js";
import { BENCH_DIR, fmt, machine, ROOT, writeSection } from "./lib/report.js";

const LINES = Number(process.env.BENCH_LINES ?? 1_000_000);
const STAGES = ["scan", "parse", "report"] as const;
type Stage = (typeof STAGES)[number];
/** The parse context of every pass: a fixed reference instant, so that runs are comparable. */
const CTX = { zone: "UTC", now: Date.parse("2024-06-01T00:00:00Z") };

/** Child: `passes` passes of `stage` over `file`, using the compiled modules in dist/. */
async function child(file: string, stage: Stage, passes: number): Promise<void> {
  const dist = (p: string) => pathToFileURL(join(ROOT, "dist", p)).href;
  const { ChunkScanner } = (await import(dist("cli/bulk-read.js"))) as typeof import("../src/cli/bulk-read.js");
  const { LineClassifier } = (await import(dist("parsers/index.js"))) as typeof import("../src/parsers/index.js");
  const { TestReport } = (await import(dist("cli/test-report.js"))) as typeof import("../src/cli/test-report.js");
  const buf = readFileSync(file);
  let sink = 0;
  for (let pass = 0; pass < passes; pass++) {
    const cls = new LineClassifier("auto", []);
    const report = new TestReport();
    const scanner = new ChunkScanner(
      { needles: cls.needles, ...(cls.route ? { route: cls.route } : {}), maxLineBytes: 65536 },
      stage === "scan"
        ? (line) => {
            sink += line.length;
          }
        : (line, lineNo, direct) => {
            const ev = direct ? cls.parseDirect(line, CTX) : cls.parse(line, CTX);
            if (ev && stage === "report") report.add(ev, file, lineNo);
            else if (ev) sink++;
          },
    );
    scanner.pushLines(buf, buf.lastIndexOf(10) + 1);
    scanner.end();
    sink += report.events;
  }
  process.stdout.write(`${sink}\n`);
}

/** Instructions cachegrind counts for the child with `passes` passes. */
function instructions(file: string, stage: Stage, passes: number): number {
  const r = spawnSync(
    "valgrind",
    [
      "--tool=cachegrind",
      "--cache-sim=no",
      "--cachegrind-out-file=/dev/null",
      process.execPath,
      "--single-threaded",
      "--import",
      "tsx",
      join(ROOT, "bench", "parse-cost.ts"),
      "--child",
      file,
      stage,
      String(passes),
    ],
    { encoding: "utf8", cwd: ROOT, maxBuffer: 1 << 26 },
  );
  const m = /I\s+refs:\s+([\d,]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`valgrind run failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return Number(m[1]!.replaceAll(",", ""));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") {
    await child(args[1]!, args[2] as Stage, Number(args[3]));
    return;
  }
  try {
    execFileSync("valgrind", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("valgrind is not installed (apt-get install valgrind)");
  }
  if (!existsSync(join(ROOT, "dist", "cli", "bulk-read.js"))) throw new Error("run `npm run build` first");
  const log = join(BENCH_DIR, `asterisk-${LINES}.log`);
  await generateAsteriskLog(log, LINES, 42);

  // Split by what the parsers make of each line (one in-process pass).
  const { LineClassifier } = await import("../src/parsers/index.js");
  const cls = new LineClassifier("auto", []);
  const attack: string[] = [];
  const ordinary: string[] = [];
  for (const line of readFileSync(log, "utf8").split("\n")) {
    if (line === "") continue;
    (cls.parse(line, CTX) ? attack : ordinary).push(line);
  }
  const files = {
    attack: { path: join(BENCH_DIR, "parse-cost-attack.log"), lines: attack.length },
    ordinary: { path: join(BENCH_DIR, "parse-cost-ordinary.log"), lines: ordinary.length },
  };
  writeFileSync(files.attack.path, attack.join("\n") + "\n");
  writeFileSync(files.ordinary.path, ordinary.join("\n") + "\n");

  const perLine = (which: keyof typeof files, stage: Stage): number => {
    const f = files[which];
    const two = instructions(f.path, stage, 2);
    const four = instructions(f.path, stage, 4);
    const v = (four - two) / 2 / f.lines;
    process.stderr.write(`  ${which} lines, ${stage}: ${fmt(v)} instructions per line\n`);
    return v;
  };
  const cost = {
    ordinaryParse: perLine("ordinary", "parse"),
    attackScan: perLine("attack", "scan"),
    attackParse: perLine("attack", "parse"),
    attackReport: perLine("attack", "report"),
  };
  const total = cost.ordinaryParse * files.ordinary.lines + cost.attackReport * files.attack.lines;
  const md = [
    "## Parse cost in instructions (`bench/parse-cost.ts`)",
    "",
    `Command: \`npm run build && npm run bench:parse-cost\` (needs valgrind). ${machine()}; the bench:parse log (${fmt(LINES)} lines, seed 42) split into ${fmt(files.attack.lines)} attack lines and ${fmt(files.ordinary.lines)} ordinary lines.`,
    "Instructions per line on a warm pass (JIT-compiled code), counted by cachegrind: half the difference between runs of 4 and 2 passes, so start-up cancels out. Unlike the timings above, these figures do not move with the shared machine's speed; they leave out V8's compiling in a cold process.",
    "",
    "| lines | stage | instructions per line |",
    "|---|---|---:|",
    `| ordinary (VERBOSE, DEBUG, …) | find the line, route it, skip it | ${fmt(cost.ordinaryParse)} |`,
    `| attack | find, route, decode (no parsing) | ${fmt(cost.attackScan)} |`,
    `| attack | + parse | ${fmt(cost.attackParse)} |`,
    `| attack | + report (\`TestReport.add\`) | ${fmt(cost.attackReport)} |`,
    "",
    `Whole log, warm: ${fmt(total / 1e6)} M instructions (${fmt(total / LINES)} per line on average).`,
    "",
  ].join("\n");
  writeSection("parse-cost", md);
  process.stdout.write(md);
}

await main();
