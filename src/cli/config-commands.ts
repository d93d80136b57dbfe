/** `sipwarden config check` and `sipwarden config show`. */
import type { Command } from "@commander-js/extra-typings";
import { stringify } from "yaml";
import { formatDuration } from "../config/duration.js";
import { DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";

/** Keys whose values are durations (ms inside, shown as "10m" so that `show` output loads again). */
const DURATION_KEYS = new Set([
  "trustAfterAuth",
  "max",
  "batch",
  "digest",
  "timeout",
  "pingInterval",
  "silenceWarning",
  "batchWindow",
  "dedupWindow",
]);

/** Never print credentials: `config show` output ends up in tickets and chat. */
const SECRET_KEYS = new Set(["secret", "password", "token"]);

function humanise(v: unknown, key = ""): unknown {
  if (SECRET_KEYS.has(key) && typeof v === "string") return "********";
  if (typeof v === "number" && DURATION_KEYS.has(key)) return formatDuration(v);
  if (Array.isArray(v)) return v.map((x) => humanise(x));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, humanise(x, k)]));
  return v;
}

export function registerConfigCommands(program: Command): void {
  const cfg = program.command("config").description("validate or print the configuration");
  cfg
    .command("check")
    .description("validate the config file and its drop-ins (exit 78 when invalid)")
    .option("-c, --config <file>", "config file", DEFAULT_CONFIG_PATH)
    .action((o) => {
      const { files } = loadConfig(o.config, o.config !== DEFAULT_CONFIG_PATH);
      process.stdout.write(
        files.length ? `OK: ${files.join(", ")}\n` : `OK: no config at ${o.config}; the embedded defaults apply\n`,
      );
    });
  cfg
    .command("show")
    .description("print the effective config (defaults, file and drop-ins merged)")
    .option("-c, --config <file>", "config file", DEFAULT_CONFIG_PATH)
    .option("--json", "JSON instead of YAML")
    .action((o) => {
      const { config, files } = loadConfig(o.config, o.config !== DEFAULT_CONFIG_PATH);
      if (o.json) {
        process.stdout.write(JSON.stringify(humanise(config), null, 2) + "\n");
        return;
      }
      process.stdout.write(`# effective config from: ${files.length ? files.join(", ") : "embedded defaults"}\n`);
      process.stdout.write(stringify(humanise(config)));
    });
}
