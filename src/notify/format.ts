/**
 * The human text of notifications: mail subjects and bodies, Slack text. Pure functions of
 * their input, so the wording is tested without a receiver. Reasons and rule names can carry
 * attacker-influenced text (a User-Agent), so control characters are stripped everywhere and
 * Slack's markup characters are escaped.
 */
import { formatDuration } from "../config/duration.js";
import type { BanTally, HeldBan } from "./tally.js";
import type { BanNotice, LifecycleInfo, LifecyclePhase, UnbanNotice } from "./types.js";

export interface LifecycleNote {
  readonly phase: LifecyclePhase;
  readonly info: LifecycleInfo;
  readonly at: number;
}

/** Everything one mail says. Empty parts are left out. */
export interface MailContent {
  readonly host: string;
  readonly lifecycle: readonly LifecycleNote[];
  /** Bans since the previous mail. */
  readonly batch?: BanTally;
  /** The digest period's summary. */
  readonly digest?: { readonly tally: BanTally; readonly since: number; readonly until: number };
}

const num = (n: number) => n.toLocaleString("en-US");

/** `2024-05-01 12:00:05Z`. */
export function stamp(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/** One line, no control characters, at most `max` characters. */
export function clean(s: string, max = 200): string {
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

export function banLength(duration: number | null): string {
  return duration === null ? "permanent" : formatDuration(duration);
}

/** `SIP auth brute force ×30, scanner ×7, other rules ×3`. */
export function rulesSummary(rules: readonly [string, number][], shown = 3): string {
  const head = rules.slice(0, shown).map(([r, n]) => `${clean(r, 60)} ×${num(n)}`);
  const rest = rules.slice(shown).reduce((s, [, n]) => s + n, 0);
  if (rest > 0) head.push(`other rules ×${num(rest)}`);
  return head.join(", ");
}

/** `37 addresses banned (…)`, or `198.51.100.7 banned (rule)` for a single one. */
export function bansHeadline(tally: BanTally): string {
  if (tally.total === 1 && tally.held.size === 1) {
    const only = tally.held.values().next().value!;
    return `${only.target} banned (${clean(only.rule, 60)})`;
  }
  const noun = tally.total === 1 ? "address" : "addresses";
  return `${num(tally.total)} ${noun} banned (${rulesSummary(tally.rules())})`;
}

export function mailSubject(c: MailContent): string {
  const parts: string[] = [];
  for (const l of c.lifecycle) parts.push(l.phase === "start" ? "started" : "stopped");
  if (c.batch && c.batch.total > 0) parts.push(bansHeadline(c.batch));
  if (c.digest) parts.push(`digest: ${num(c.digest.tally.total)} banned since ${stamp(c.digest.since)}`);
  if (parts.length === 0 && c.batch && c.batch.unbans > 0) parts.push(`${num(c.batch.unbans)} bans lifted`);
  return clean(`[sipwarden] ${c.host}: ${parts.join("; ")}`, 250);
}

function lifecycleText(host: string, l: LifecycleNote): string {
  const facts: string[] = [];
  if (l.info.version) facts.push(`version ${clean(l.info.version, 40)}`);
  if (l.info.activeBans !== undefined) {
    facts.push(`${num(l.info.activeBans)} active bans${l.phase === "start" ? " restored" : " stay in force"}`);
  }
  if (l.info.reason) facts.push(`reason: ${clean(l.info.reason)}`);
  const verb = l.phase === "start" ? "started" : "stopped";
  return `sipwarden ${verb} on ${host} at ${stamp(l.at)}${facts.length ? ` (${facts.join(", ")})` : ""}.`;
}

function banRow(b: HeldBan, tw: number, rw: number): string {
  return (
    `  ${b.target.padEnd(tw)} ${clean(b.rule, 30).padEnd(rw)} ${num(b.count).padStart(7)} ` +
    `${banLength(b.duration).padEnd(10)} ${stamp(b.first)} → ${stamp(b.last)}  ${clean(b.reason, 120)}`
  );
}

/** The top `listLimit` addresses and the exact number left out. */
export function banTable(tally: BanTally, listLimit: number): string[] {
  const top = tally.top(listLimit);
  const tw = Math.max(7, ...top.map((b) => b.target.length));
  const rw = Math.max(4, ...top.map((b) => clean(b.rule, 30).length));
  const lines = [
    `  ${"Address".padEnd(tw)} ${"Rule".padEnd(rw)} ${"Tries".padStart(7)} ${"Ban".padEnd(10)} First → last attempt  Reason`,
    ...top.map((b) => banRow(b, tw, rw)),
  ];
  const more = tally.total - top.length;
  if (more > 0) lines.push(`  … and ${num(more)} more ${more === 1 ? "address" : "addresses"} (not listed).`);
  return lines;
}

function rulesTable(tally: BanTally): string[] {
  const rules = tally.rules();
  const w = Math.max(...rules.map(([r]) => clean(r, 60).length));
  return rules.map(([r, n]) => `  ${clean(r, 60).padEnd(w)} ${num(n).padStart(9)}`);
}

export function mailText(c: MailContent, listLimit: number): string {
  const out: string[] = [];
  for (const l of c.lifecycle) out.push(lifecycleText(c.host, l), "");
  const b = c.batch;
  if (b && b.total > 0) {
    out.push(`${num(b.total)} ${b.total === 1 ? "address" : "addresses"} banned on ${c.host}`);
    out.push(`(attempts from ${stamp(b.start)} to ${stamp(b.end)}).`, "", "By rule:", ...rulesTable(b), "");
    out.push(...banTable(b, listLimit), "");
  }
  if (b && b.unbans > 0) out.push(`${num(b.unbans)} bans lifted since the previous mail.`, "");
  if (c.digest) {
    const d = c.digest.tally;
    out.push(`Digest for ${c.host}, ${stamp(c.digest.since)} to ${stamp(c.digest.until)}:`);
    out.push(`  ${num(d.total)} addresses banned, ${num(d.unbans)} bans lifted.`);
    if (d.total > 0) out.push("", "By rule:", ...rulesTable(d), "", "Most active:", ...banTable(d, 10));
    out.push("");
  }
  out.push("-- ", `sipwarden on ${c.host}`);
  return out.join("\n");
}

/** Slack treats `<…>` as links and mentions (`<!channel>`): escape what the receiver would parse. */
export function slackEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function slackBans(host: string, bans: readonly BanNotice[], dropped: number, listLimit = 20): string {
  const rules = new Map<string, number>();
  for (const b of bans) rules.set(b.rule, (rules.get(b.rule) ?? 0) + 1);
  const summary = rulesSummary([...rules.entries()].sort((a, b) => b[1] - a[1]));
  const lines = [
    `*[sipwarden] ${slackEscape(host)}*: ${num(bans.length)} ${bans.length === 1 ? "address" : "addresses"} banned (${slackEscape(summary)})`,
  ];
  for (const b of bans.slice(0, listLimit)) {
    lines.push(
      `• \`${slackEscape(clean(b.target, 50))}\` ${slackEscape(clean(b.rule, 60))}: ${num(b.count)} attempts, ban ${banLength(b.duration)} — ${slackEscape(clean(b.reason))}`,
    );
  }
  if (bans.length > listLimit) lines.push(`… and ${num(bans.length - listLimit)} more`);
  if (dropped > 0) lines.push(`(${num(dropped)} earlier notices dropped: the webhook was too slow)`);
  return lines.join("\n");
}

export function slackUnbans(host: string, unbans: readonly UnbanNotice[], listLimit = 20): string {
  const lines = [`*[sipwarden] ${slackEscape(host)}*: ${num(unbans.length)} bans lifted`];
  for (const u of unbans.slice(0, listLimit)) {
    lines.push(
      `• \`${slackEscape(clean(u.target, 50))}\` by ${slackEscape(clean(u.by, 40))}${u.reason ? `: ${slackEscape(clean(u.reason))}` : ""}`,
    );
  }
  if (unbans.length > listLimit) lines.push(`… and ${num(unbans.length - listLimit)} more`);
  return lines.join("\n");
}

export function slackLifecycle(host: string, l: LifecycleNote): string {
  return `*[sipwarden] ${slackEscape(host)}*: ${slackEscape(lifecycleText(host, l))}`;
}
