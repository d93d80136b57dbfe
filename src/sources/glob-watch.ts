/**
 * Path patterns for the file source: `*`, `?` and `[...]` in the LAST path component only
 * (`/var/log/asterisk/*.log`). Node 20 has neither `fs.glob` nor `path.matchesGlob`, and the
 * rotated logs we follow always sit in one known directory, so a last-component matcher is
 * all that is needed; a pattern in a directory component is refused.
 */
import { basename, dirname, resolve } from "node:path";
import { SipwardenError } from "../core/errors.js";

export interface PathPattern {
  /** The pattern as configured, made absolute. */
  readonly text: string;
  /** Absolute directory the pattern lists. */
  readonly dir: string;
  /** Whether the last component has wildcards; a literal pattern names exactly one file. */
  readonly isGlob: boolean;
  /** Whether a directory entry name matches the last component. */
  matches(name: string): boolean;
}

const GLOB_CHARS = /[*?[]/;

/** Compile `text` (absolute or relative to the working directory). */
export function compilePattern(text: string): PathPattern {
  const abs = resolve(text);
  const dir = dirname(abs);
  const last = basename(abs);
  if (GLOB_CHARS.test(dir)) {
    throw new SipwardenError("CONFIG_INVALID", `wildcards are allowed only in the file name, not in ${dir}`, {
      path: "sources.files.path",
    });
  }
  if (!GLOB_CHARS.test(last)) {
    return { text: abs, dir, isGlob: false, matches: (name) => name === last };
  }
  const re = globToRegExp(last);
  // As in a shell, a wildcard does not match a leading dot (`*.log` skips `.x.log`).
  const dotOk = last.startsWith(".");
  return { text: abs, dir, isGlob: true, matches: (name) => (dotOk || !name.startsWith(".")) && re.test(name) };
}

/** `*` any run, `?` one character, `[abc]`, `[a-z]`, `[!x]`/`[^x]` one of / none of a set. */
export function globToRegExp(glob: string): RegExp {
  let out = "^";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close === -1) {
        out += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, close);
      let negate = false;
      if (body.startsWith("!") || body.startsWith("^")) {
        negate = true;
        body = body.slice(1);
      }
      // Only `-` keeps its meaning inside a class; everything else is literal.
      const cls = body.replace(/[\\\]^[]/g, "\\$&");
      out += `[${negate ? "^" : ""}${cls}]`;
      i = close;
    } else out += c.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(out + "$", "s");
}
