/**
 * `sipwarden demo`: replays a bundled attack log through the live pipeline (file tail →
 * parsers → rules → ban manager → store), in dry-run, in a temporary state directory. Lines
 * are written by their own timestamps (sped up), re-stamped to now.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "@commander-js/extra-typings";
import { apiCall } from "../api/client.js";
import type { BanInfo } from "../api/types.js";
import { defaultConfig } from "../config/load.js";
import { formatBans } from "./control-commands.js";
import { applyRunFlags } from "./run-command.js";

export const DEMO_LOG = fileURLToPath(new URL("../../demo/asterisk-attack.log", import.meta.url));
const STAMP = /^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\]/;

function stampOf(line: string): number | null {
  const m = STAMP.exec(line);
  return m ? Date.parse(m[1]!.replace(" ", "T") + "Z") : null;
}

function restamp(line: string, t: number): string {
  return line.replace(STAMP, `[${new Date(t).toISOString().slice(0, 19).replace("T", " ")}]`);
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("replay a bundled attack log through the live pipeline, in dry-run (blocks nothing)")
    .option("--speed <factor>", "replay speed-up", "4")
    .option("--log <file>", "an Asterisk log (dateformat=%F %T) to replay instead of the bundled one", DEMO_LOG)
    .action(async (o) => {
      const speed = Math.max(0.1, Number(o.speed) || 4);
      const dir = mkdtempSync(join(tmpdir(), "sipwarden-demo-"));
      const log = join(dir, "asterisk-full.log");
      writeFileSync(log, "");
      const socket = join(dir, "ctl.sock");
      const config = applyRunFlags(defaultConfig(), {
        config: "",
        format: "auto",
        log: [log],
        backend: "dry-run",
        stateDir: join(dir, "state"),
        socket,
      });
      const zoned = { ...config, time: { zone: "UTC" } };
      const [{ Daemon }, { createLogger }] = await Promise.all([import("../daemon.js"), import("../core/logger.js")]);
      const logger = createLogger({ level: "info", pretty: true });
      const daemon = new Daemon({ loadConfig: () => ({ config: zoned, files: [] }), log: logger });
      try {
        await daemon.start();
        const lines = readFileSync(o.log, "utf8").split("\n").filter(Boolean);
        const first = lines.map(stampOf).find((t) => t !== null) ?? 0;
        const start = Date.now();
        process.stdout.write(`\nreplaying ${lines.length} lines from ${o.log} at ${speed}× speed into ${log}\n\n`);
        for (const line of lines) {
          const t = stampOf(line);
          const due = t === null ? 0 : (t - first) / speed;
          const wait = start + due - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          appendFileSync(log, (t === null ? line : restamp(line, start + (t - first))) + "\n");
        }
        await new Promise((r) => setTimeout(r, 1500));
        const bans = await apiCall<BanInfo[]>("GET", "/v1/bans", undefined, { socket });
        process.stdout.write(
          `\n${formatBans(bans)}\n\nThis was a dry run: nothing was blocked. State was kept in ${dir} and is now removed.\n`,
        );
      } finally {
        await daemon.stop("demo finished");
        rmSync(dir, { recursive: true, force: true });
      }
    });
}
