/**
 * The per-scenario summary printed at the end of an e2e run (and meant for BENCHMARKS.md).
 */

/** One row: what an attacker did and what it achieved before (or without) a ban. */
export interface ScenarioRow {
  scenario: string;
  attacker: string;
  /** Packets the attacker's namespace sent to the PBX's SIP port (its own OUTPUT counter). */
  packetsSent: number;
  /** Requests Kamailio received from the attacker before the ban settled (or in all, unbanned). */
  reachedBeforeBan: number;
  /** Requests Kamailio received from the attacker in the whole scenario. */
  reachedTotal: number;
  /** ms from the first request to the ban; null when not banned. */
  timeToBanMs: number | null;
  rule: string | null;
  note?: string;
}

const ms = (v: number | null) => (v === null ? "-" : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(2)} s`);

/** A Markdown table. */
export function formatSummary(title: string, rows: readonly ScenarioRow[]): string {
  const head = [
    "scenario",
    "attacker",
    "packets sent",
    "reached Kamailio before ban",
    "reached in all",
    "time to ban",
    "rule",
    "note",
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.attacker,
    String(r.packetsSent),
    r.rule === null ? "- (no ban)" : String(r.reachedBeforeBan),
    String(r.reachedTotal),
    ms(r.timeToBanMs),
    r.rule ?? "-",
    r.note ?? "",
  ]);
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [`### ${title}`, "", line(head), line(head.map(() => "---")), ...body.map(line)].join("\n");
}
