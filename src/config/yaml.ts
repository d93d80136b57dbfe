/**
 * Strict YAML loading: parse with the `yaml` package, validate with a zod schema, and turn
 * every problem into a SipwardenError that names the file, the line and the path.
 */
import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { type ErrorCode, SipwardenError } from "../core/errors.js";

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(root)";
}

function nodeAt(root: Node | null | undefined, path: readonly PropertyKey[]): Node | null {
  let node: Node | null | undefined = root;
  let last: Node | null = root ?? null;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) return last;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof key === "number") {
      node = node.items[key] as Node | undefined;
    } else {
      return last;
    }
    if (node) last = node;
  }
  return last;
}

/** Deep-freezes a plain value in place. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

export interface YamlSource {
  /** Raw YAML data (not yet validated), with a way to find the line of any path. */
  data: unknown;
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

export function readYaml(text: string, file: string, code: ErrorCode = "CONFIG_INVALID"): YamlSource {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? (e.pos ? lc.linePos(e.pos[0]).line : undefined);
    throw new SipwardenError(code, `YAML syntax: ${e.message.split("\n")[0]}`, {
      file,
      ...(line ? { line } : {}),
    });
  }
  return {
    data: doc.toJS({ maxAliasCount: 100 }) ?? {},
    lineOf(path) {
      const n = nodeAt(doc.contents, path);
      return n?.range ? lc.linePos(n.range[0]).line : undefined;
    },
  };
}

/** Validates `src.data` against `schema`; the first issue becomes the error (all are listed in its message). */
export function validate<S extends z.ZodType>(
  schema: S,
  src: YamlSource,
  file: string,
  code: ErrorCode = "CONFIG_INVALID",
): z.output<S> {
  const r = schema.safeParse(src.data);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const first = issues[0]!;
  const describeIssue = (i: (typeof issues)[number]): string => {
    if (i.code === "unrecognized_keys") return `unknown key ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    return i.message;
  };
  const path =
    first.code === "unrecognized_keys" && first.keys.length > 0 ? [...first.path, first.keys[0]!] : first.path;
  const line = src.lineOf(path);
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? "s" : ""})` : "";
  return (() => {
    throw new SipwardenError(code, describeIssue(first) + more, {
      file,
      path: formatPath(path),
      ...(line ? { line } : {}),
    });
  })();
}
