/**
 * The Node.js release sipwarden runs on. A security daemon should not run on a release line that
 * no longer gets security fixes, so the daemon (and the install script) say so when it does.
 */

/**
 * Each Node.js release line's end of life and, for the LTS (even) lines, the day it entered
 * long-term support, from the release schedule (nodejs.org, "Previous Releases"). Lines not
 * listed (older than 20, which package.json refuses, or newer than this table) get no warning.
 */
export const NODE_RELEASES: Readonly<Record<number, { readonly lts?: string; readonly endOfLife: string }>> = {
  20: { lts: "2023-10-24", endOfLife: "2026-04-30" },
  21: { endOfLife: "2024-06-01" },
  22: { lts: "2024-10-29", endOfLife: "2027-04-30" },
  23: { endOfLife: "2025-06-01" },
  24: { lts: "2025-10-28", endOfLife: "2028-04-30" },
  25: { endOfLife: "2026-06-01" },
  26: { lts: "2026-10-28", endOfLife: "2029-04-30" },
};

const startOf = (day: string) => Date.parse(`${day}T00:00:00Z`);
const endOf = (day: string) => Date.parse(`${day}T23:59:59.999Z`);

/** The LTS lines in long-term support at `now`, oldest first. */
function supportedLts(now: number): number[] {
  return Object.entries(NODE_RELEASES)
    .filter(([, r]) => r.lts !== undefined && startOf(r.lts) <= now && endOf(r.endOfLife) >= now)
    .map(([major]) => Number(major))
    .sort((a, b) => a - b);
}

function orList(xs: number[]): string {
  return xs.length < 2 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}

/**
 * A warning when `version` (default: this process's Node.js) belongs to a release line past its
 * end of life at `now`, else null.
 */
export function runtimeWarning(version: string = process.versions.node, now: number = Date.now()): string | null {
  const major = Number.parseInt(version, 10);
  const eol = NODE_RELEASES[major]?.endOfLife;
  if (eol === undefined || endOf(eol) >= now) return null;
  const lts = supportedLts(now);
  const upgrade = lts.length > 0 ? `; upgrade to Node.js ${orList(lts)} LTS` : "";
  return `Node.js ${version} reached its end of life on ${eol} and gets no security fixes${upgrade}`;
}
