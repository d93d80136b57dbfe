/** Human-readable rendering of a `sipwarden test` result. */
import type { TestResult } from "./test-command.js";

// Created on first use: building it loads ICU locale data (about 20 ms), which `--json` and
// `--events` never need.
let nf: Intl.NumberFormat | null = null;
function n(v: number): string {
  nf ??= new Intl.NumberFormat("en-US");
  return nf.format(v);
}

function table(rows: [string, number][], indent = "  "): string {
  const w = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(w)}  ${n(v).padStart(10)}`).join("\n");
}

function truncate(s: string, max = 160): string {
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

export function formatHuman(result: TestResult, topN = 20): string {
  const r = result.report;
  const out: string[] = [];
  out.push(
    `Read ${n(r.lines)} lines (${n(r.bytes)} bytes) from ${r.files.length} file${r.files.length === 1 ? "" : "s"} in ${(r.elapsedMs / 1000).toFixed(3)} s: ${n(r.linesPerSecond)} lines/s`,
  );
  out.push(`Events: ${n(r.events)}   hostile lines: ${n(r.hostile)}   addresses: ${n(r.addresses.length)}`);
  if (r.skippedLong > 0) out.push(`Skipped ${n(r.skippedLong)} over-long lines`);
  const kinds = Object.entries(r.byKind).sort((a, b) => b[1] - a[1]);
  if (kinds.length) out.push("", "Events by kind:", table(kinds));
  const pats = Object.entries(r.byPattern).sort((a, b) => b[1] - a[1]);
  if (pats.length) out.push("", "Hits by pattern:", table(pats));
  if (r.addresses.length) {
    out.push("", `Top addresses (${Math.min(topN, r.addresses.length)} of ${n(r.addresses.length)}):`);
    const w = Math.max(...r.addresses.slice(0, topN).map((a) => a.ip.length));
    for (const a of r.addresses.slice(0, topN)) {
      const kinds = Object.entries(a.kinds)
        .map(([k, v]) => `${k} ${n(v)}`)
        .join(", ");
      const acc = a.accountCount
        ? `  accounts: ${a.accounts.slice(0, 8).join(", ")}${a.accountCount > 8 ? ` … (${n(a.accountCount)})` : ""}`
        : "";
      out.push(`  ${a.ip.padEnd(w)}  ${n(a.events).padStart(8)}  ${kinds}${acc}`);
    }
  }
  if (r.hostileLines.length) {
    out.push("", "Hostile lines (an address may have been planted; these never ban anybody):");
    for (const h of r.hostileLines.slice(0, topN))
      out.push(`  ${h.file}:${h.line}  candidates ${h.candidates.join(", ") || "-"}`, `    ${truncate(h.text)}`);
  }
  if (r.bans.length) {
    out.push("", `Would ban ${n(r.bans.length)} address${r.bans.length === 1 ? "" : "es"}:`);
    const w = Math.max(...r.bans.map((b) => b.ip.length));
    for (const b of r.bans.slice(0, 100))
      out.push(
        `  ${b.ip.padEnd(w)}  ${b.rule}  ${n(b.count)} events  ${b.first} … ${b.last}  for ${Math.round(b.duration)} s`,
      );
    if (r.bans.length > 100) out.push(`  … and ${n(r.bans.length - 100)} more (use --json for all)`);
  } else if (r.events > 0) {
    out.push("", "Would ban: nobody");
  }
  if (result.missedTotal > 0) {
    out.push("", `Suspicious lines no pattern matched (${n(result.missedTotal)}):`);
    for (const m of result.missed) out.push(`  ${m.file}:${m.line}  ${truncate(m.text)}`);
  }
  return out.join("\n") + "\n";
}
