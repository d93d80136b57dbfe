/**
 * Loads the config file plus its drop-ins (`sipwarden.d/*.yaml` beside it, in name order,
 * each deep-merged over the result so far: maps merge, lists and scalars replace), validates
 * strictly and freezes the result.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { SipwardenError } from "../core/errors.js";
import { assertZone } from "../core/time.js";
import { type Config, configSchema } from "./schema.js";
import { deepFreeze, readYaml, validate, type YamlSource } from "./yaml.js";

export const DEFAULT_CONFIG_PATH = "/etc/sipwarden/sipwarden.yaml";

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}

export interface LoadedConfig {
  config: Config;
  /** Every file that contributed, in merge order. */
  files: string[];
}

function readSource(file: string): YamlSource {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new SipwardenError("CONFIG_READ", `cannot read config: ${(cause as Error).message}`, { file, cause });
  }
  return readYaml(text, file);
}

function check(config: Config, file: string): void {
  if (config.time.zone) {
    try {
      assertZone(config.time.zone);
    } catch (cause) {
      throw new SipwardenError("CONFIG_INVALID", `unknown time zone ${JSON.stringify(config.time.zone)}`, {
        file,
        path: "time.zone",
        cause,
      });
    }
  }
  config.parsers.custom.forEach((p, i) => {
    try {
      const re = new RegExp(p.regex);
      if (!/\(\?<ip>/.test(p.regex)) throw new Error("the regex must capture a named group (?<ip>…)");
      void re;
    } catch (cause) {
      throw new SipwardenError("PATTERN_INVALID", (cause as Error).message, {
        file,
        path: `parsers.custom[${i}].regex`,
        cause,
      });
    }
  });
  config.sources.ami.forEach((a, i) => {
    if (!a.secret === !a.secretFile)
      throw new SipwardenError("CONFIG_INVALID", "give exactly one of secret or secretFile", {
        file,
        path: `sources.ami[${i}]`,
      });
  });
}

/**
 * Loads `file` (when it exists or `required`) and its drop-ins. With no file, the embedded
 * defaults apply.
 */
export function loadConfig(file: string = DEFAULT_CONFIG_PATH, required = false): LoadedConfig {
  const files: string[] = [];
  let data: unknown = {};
  let last: { src: YamlSource; file: string } | null = null;
  if (existsSync(file) || required) {
    const src = readSource(file);
    validate(configSchema, src, file);
    data = src.data;
    files.push(file);
    last = { src, file };
  }
  const dropDir = join(dirname(file), `${basename(file).replace(/\.ya?ml$/, "")}.d`);
  const altDir = join(dirname(file), "sipwarden.d");
  const dir = existsSync(dropDir) ? dropDir : existsSync(altDir) ? altDir : null;
  if (dir) {
    for (const name of readdirSync(dir).sort()) {
      if (!/\.ya?ml$/.test(name)) continue;
      const f = join(dir, name);
      const src = readSource(f);
      data = deepMerge(data, src.data);
      files.push(f);
      last = { src, file: f };
      validate(configSchema, { data, lineOf: src.lineOf }, f);
    }
  }
  const config = validate(configSchema, { data, lineOf: last?.src.lineOf ?? (() => undefined) }, last?.file ?? file);
  check(config, last?.file ?? file);
  return { config: deepFreeze(config), files };
}

/** Validates YAML text as a complete config (for tests and `config check` of a single file). */
export function parseConfigText(text: string, file = "<inline>"): Config {
  const src = readYaml(text, file);
  const config = validate(configSchema, src, file);
  check(config, file);
  return deepFreeze(config);
}

export function defaultConfig(): Config {
  return deepFreeze(configSchema.parse({}));
}
