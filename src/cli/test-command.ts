/**
 * `sipwarden test <file…>`: sipwarden's fail2ban-regex. Reads logs (or `-`), detects the
 * format of each line, and reports what the parsers (and, once loaded, the rules) make of it.
 */
import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import { defaultConfig, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { EXIT, SipwardenError } from "../core/errors.js";
import { toRecord } from "../core/events.js";
import { hostAddresses } from "../core/host-addresses.js";
import { hostZone } from "../core/time.js";
import { Replayer } from "../detect/replay.js";
import type { RuleSpec } from "../detect/rule-schema.js";
import { loadRules } from "../detect/rules.js";
import { createCustomParser } from "../parsers/custom.js";
import { LineClassifier, type LogFormat } from "../parsers/index.js";
import type { LineParser } from "../parsers/types.js";
import { PartialReadError, type ScanStats, scanPath } from "./bulk-read.js";
import { formatHuman } from "./test-format.js";
import { TestReport, type TestReportJson } from "./test-report.js";

export interface TestOptions {
  format: LogFormat | "auto";
  config?: string;
  json?: boolean;
  events?: boolean;
  showMissed?: boolean;
  /** Reference time for year inference; defaults to now. */
  now?: number;
  /** Extra parsers (custom patterns) ahead of the built-in ones; default: from the config. */
  extraParsers?: LineParser[];
  /** Rules to replay; default: config `rules` (the shipped rules). Empty: no ban list. */
  rules?: readonly RuleSpec[];
}

/** Lines that look security-relevant; with --show-missed, those that yield no event are printed. */
const SUSPICIOUS = /fail|reject|denied|invalid|unauthori|not found|forbidden|block|attack|scanner|wrong password/i;
const MAX_MISSED = 200;

export interface TestResult {
  report: TestReportJson;
  /** Files that could not be read (the others are still analysed). */
  errors: SipwardenError[];
  missed: { file: string; line: number; text: string }[];
  missedTotal: number;
}

/** Runs the analysis. `write` receives NDJSON event lines when `opts.events` is set. */
export async function analyze(
  files: string[],
  opts: TestOptions,
  config: Config,
  write: (s: string) => void = () => {},
): Promise<TestResult> {
  const custom = opts.extraParsers ?? (config.parsers.custom.length ? [createCustomParser(config.parsers.custom)] : []);
  const classifier = new LineClassifier(opts.format, custom);
  const rules = opts.rules ?? loadRules({ dirs: config.rules.dirs, disable: config.rules.disable });
  const replayer =
    rules.length > 0
      ? new Replayer(rules, {
          policy: config.policy,
          hostAddresses: hostAddresses(),
          scannerAgents: config.rules.scannerAgents,
        })
      : null;
  const ctx = { zone: config.time.zone ?? hostZone(), now: opts.now ?? Date.now() };
  const report = new TestReport();
  const missed: TestResult["missed"] = [];
  let missedTotal = 0;
  const t0 = process.hrtime.bigint();
  const errors: SipwardenError[] = [];
  const count = (file: string, stats: ScanStats) => {
    report.files.push(file);
    report.lines += stats.lines;
    report.bytes += stats.bytes;
    report.skippedLong += stats.skippedLong;
  };
  for (const file of files) {
    let stats: ScanStats;
    try {
      stats = await scanPath(
        file,
        {
          needles: opts.showMissed ? [] : classifier.needles,
          ...(classifier.route && !opts.showMissed ? { route: classifier.route } : {}),
          maxLineBytes: 65536,
        },
        (line, lineNo, direct) => {
          const ev = direct ? classifier.parseDirect(line, ctx) : classifier.parse(line, ctx);
          if (ev) {
            report.add(ev, file, lineNo);
            replayer?.push(ev);
            if (opts.events) write(JSON.stringify(toRecord(ev)) + "\n");
          } else if (opts.showMissed && SUSPICIOUS.test(line)) {
            missedTotal++;
            if (missed.length < MAX_MISSED) missed.push({ file, line: lineNo, text: line });
          }
        },
      );
    } catch (err) {
      if (err instanceof SipwardenError && err.code === "INPUT_READ") {
        errors.push(err);
        // Cut short part of the way through: what was read is in the report, so it is counted.
        if (err instanceof PartialReadError) count(file, err.stats);
        continue;
      }
      throw err;
    }
    count(file, stats);
  }
  const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    report: report.toJSON(elapsedMs, replayer?.bans() ?? [], replayer?.suppressed.length ?? 0),
    errors,
    missed,
    missedTotal,
  };
}

function loadConfigFor(path: string | undefined): Config {
  if (!path) return defaultConfig();
  return loadConfig(path, true).config;
}

export function registerTestCommand(program: Command): void {
  program
    .command("test")
    .description("analyse log files like fail2ban-regex: what sipwarden detects in them, and whom it would ban")
    .argument("<file...>", "log files to read ('-' for standard input)")
    .addOption(
      new Option("-f, --format <format>", "log format")
        .choices(["auto", "asterisk", "kamailio", "freeswitch"])
        .default("auto"),
    )
    .option("-c, --config <file>", "config file (time zone, custom patterns, rules, policy)")
    .option(
      "--rules <dir>",
      "rule directory or file instead of the configured rules (repeatable)",
      (v: string, p: string[] = []) => [...p, v],
    )
    .option("--no-rules", "parse only: do not replay the rules")
    .option("--json", "print one JSON object (stable format, see README)")
    .option("--events", "print every event as one JSON line (NDJSON)")
    .option("--show-missed", "also list suspicious-looking lines that no pattern matched")
    .action(async (files, o) => {
      if (o.json && o.events) throw new SipwardenError("USAGE", "--json and --events cannot be combined");
      const config = loadConfigFor(o.config);
      const rules = o.rules === false ? [] : Array.isArray(o.rules) ? loadRules({ dirs: o.rules }) : undefined;
      const out = (s: string) => process.stdout.write(s);
      const result = await analyze(
        files,
        {
          format: o.format as LogFormat | "auto",
          json: o.json === true,
          events: o.events === true,
          showMissed: o.showMissed === true,
          ...(rules ? { rules } : {}),
        },
        config,
        out,
      );
      for (const e of result.errors) process.stderr.write(`sipwarden: ${e.describe()}\n`);
      if (o.json) out(JSON.stringify(result.report, null, 2) + "\n");
      else if (!o.events) out(formatHuman(result));
      if (result.errors.length > 0) process.exitCode = EXIT.NOINPUT;
    });
}
