/**
 * Reader for annotated log fixtures (test/fixtures/logs/<server>/<case>.log):
 *
 *   # any comment
 *   # context: {"zone":"Europe/Berlin","now":"2024-06-01T00:00:00Z"}   (optional, applies below)
 *   # expect: {"kind":"auth_failed","ip":"198.51.100.23","pattern":"asterisk.pjsip.request_failed", ...}
 *   <the log line>
 *   # expect: null
 *   <a line that must not yield an event>
 *
 * Keys in an expectation are compared with the event's EventRecord (toRecord) form; keys not
 * given are not compared. `kind` and `pattern` are required, `ip` too unless kind is hostile.
 * `candidates` is compared for hostile events.
 */
import { readFileSync } from "node:fs";

export interface FixtureCase {
  file: string;
  /** 1-based line number of the log line. */
  lineNo: number;
  line: string;
  expect: Record<string, unknown> | null;
  zone: string;
  now: number;
}

export function readFixture(file: string): FixtureCase[] {
  const lines = readFileSync(file, "utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  const out: FixtureCase[] = [];
  let zone = "UTC";
  let now = Date.parse("2024-12-31T00:00:00Z");
  let pending: { expect: Record<string, unknown> | null; at: number } | null = null;
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.startsWith("# context:")) {
      const c = JSON.parse(line.slice(10)) as { zone?: string; now?: string };
      if (c.zone) zone = c.zone;
      if (c.now) now = Date.parse(c.now);
      return;
    }
    if (line.startsWith("# expect:")) {
      if (pending) throw new Error(`${file}:${pending.at}: annotation not followed by a log line`);
      const body = line.slice(9).trim();
      const expect = JSON.parse(body) as Record<string, unknown> | null;
      if (expect !== null) {
        if (typeof expect.kind !== "string" || typeof expect.pattern !== "string")
          throw new Error(`${file}:${lineNo}: expectation needs "kind" and "pattern"`);
        if (expect.kind !== "hostile" && typeof expect.ip !== "string")
          throw new Error(`${file}:${lineNo}: expectation needs "ip"`);
      }
      pending = { expect, at: lineNo };
      return;
    }
    if (line.startsWith("#") || line.trim() === "") {
      if (pending && line.trim() === "") throw new Error(`${file}:${pending.at}: annotation followed by a blank line`);
      if (line.startsWith("#")) return;
      return;
    }
    if (!pending) throw new Error(`${file}:${lineNo}: log line without a "# expect:" annotation`);
    out.push({ file, lineNo, line, expect: pending.expect, zone, now });
    pending = null;
  });
  if (pending) throw new Error(`${file}: trailing annotation with no log line`);
  return out;
}
