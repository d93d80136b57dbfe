/**
 * Loads detection rules: every `*.yaml` / `*.yml` file of the given directories (the shipped
 * `rules/` by default), one rule per file, validated strictly. Problems are SipwardenErrors with
 * code RULE_INVALID that name the file, the line and the path.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deepFreeze, readYaml, validate } from "../config/yaml.js";
import { SipwardenError } from "../core/errors.js";
import { type RuleSpec, ruleSchema, toRuleSpec } from "./rule-schema.js";

/** The rules shipped with sipwarden (`rules/` at the package root, beside `src/` and `dist/`). */
export const SHIPPED_RULES_DIR = fileURLToPath(new URL("../../rules/", import.meta.url));

export interface RuleSetOptions {
  /** Directories (or single rule files); the shipped rules when empty or absent. */
  dirs?: readonly string[];
  /** Rule ids to leave out (config `rules.disable`). An id no file defines is an error. */
  disable?: readonly string[];
}

/** Validates one rule's YAML text. */
export function parseRule(text: string, file = "<inline>"): RuleSpec {
  const src = readYaml(text, file, "RULE_INVALID");
  const raw = validate(ruleSchema, src, file, "RULE_INVALID");
  return deepFreeze(toRuleSpec(raw, file));
}

export function loadRuleFile(file: string): RuleSpec {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new SipwardenError("RULE_INVALID", `cannot read rule: ${(cause as Error).message}`, { file, cause });
  }
  return parseRule(text, file);
}

function ruleFiles(path: string): string[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (cause) {
    throw new SipwardenError("RULE_INVALID", `cannot read rules: ${(cause as Error).message}`, { file: path, cause });
  }
  if (!isDir) return [path];
  return readdirSync(path)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort()
    .map((n) => join(path, n));
}

/** Loads, checks for duplicate ids, applies `disable`. The result is frozen, in load order. */
export function loadRules(opts: RuleSetOptions = {}): readonly RuleSpec[] {
  const dirs = opts.dirs && opts.dirs.length > 0 ? opts.dirs : [SHIPPED_RULES_DIR];
  const byId = new Map<string, RuleSpec>();
  for (const dir of dirs) {
    for (const file of ruleFiles(dir)) {
      const rule = loadRuleFile(file);
      const prev = byId.get(rule.id);
      if (prev)
        throw new SipwardenError(
          "RULE_INVALID",
          `duplicate rule id ${JSON.stringify(rule.id)} (also in ${prev.file})`,
          {
            file,
            path: "id",
          },
        );
      byId.set(rule.id, rule);
    }
  }
  if (byId.size === 0)
    throw new SipwardenError("RULE_INVALID", "no rule files (*.yaml) found", { file: dirs.join(", ") });
  (opts.disable ?? []).forEach((id, i) => {
    if (!byId.delete(id))
      throw new SipwardenError("RULE_INVALID", `unknown rule id ${JSON.stringify(id)}`, {
        path: `rules.disable[${i}]`,
      });
  });
  return Object.freeze([...byId.values()]);
}
