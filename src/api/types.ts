/**
 * What the control API needs from the daemon. The daemon implements it; the API and its
 * tests only see this facade.
 */
import type { EventRecord } from "../core/events.js";

export interface SourceInfo {
  id: string;
  state: string;
  restarts: number;
  lagMs?: number;
  lastError?: string;
  detail?: string;
}

export interface StatusInfo {
  version: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  backend: string;
  dryRun: boolean;
  sources: SourceInfo[];
  rules: { id: string; description: string; simulate: boolean }[];
  activeBans: number;
  eventsPerMinute: number;
  eventsTotal: number;
  hostileTotal: number;
  suppressedTotal: number;
  configFiles: string[];
}

export interface BanInfo {
  ip: string;
  rule: string;
  reason: string;
  source: "rule" | "manual" | "cluster";
  since: string;
  /** ISO time, or null for a permanent ban. */
  expires: string | null;
  count: number;
}

export interface ManualBan {
  target: string;
  /** Milliseconds; undefined = the default manual ban length; 0 = permanent. */
  durationMs?: number;
  reason?: string;
}

export interface Control {
  status(): StatusInfo;
  bans(): BanInfo[];
  ban(req: ManualBan): Promise<BanInfo>;
  /** Returns the number of bans removed. */
  unban(target: string | "all", by?: string): Promise<number>;
  reload(): Promise<{ rules: number; files: string[] }>;
  recentEvents(limit: number): EventRecord[];
  /** Live events; returns the unsubscribe function. */
  subscribe(fn: (e: EventRecord) => void): () => void;
}
