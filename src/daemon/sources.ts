/**
 * Builds the configured sources. With no source configured at all, sipwarden follows the
 * usual log paths of the SIP servers that are installed, and says which.
 */
import { existsSync } from "node:fs";
import type { Config } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import { AmiSource } from "../sources/ami.js";
import { fileTailFromConfig } from "../sources/file-tail.js";
import { journaldFromConfig } from "../sources/journald.js";
import type { SkipLine } from "../sources/line-splitter.js";
import { decodePosition, encodePosition, type OffsetStore } from "../sources/offsets.js";
import type { Source } from "../sources/types.js";
import type { Store } from "../store/types.js";

/** Well-known log files, per server, in order of preference (the first that exists wins). */
export const DEFAULT_LOGS: readonly { server: "asterisk" | "freeswitch" | "kamailio"; paths: string[] }[] = [
  { server: "asterisk", paths: ["/var/log/asterisk/full", "/var/log/asterisk/messages"] },
  { server: "freeswitch", paths: ["/var/log/freeswitch/freeswitch.log"] },
  { server: "kamailio", paths: ["/var/log/kamailio/kamailio.log", "/var/log/kamailio.log"] },
];

export function offsetsFromStore(store: Store): OffsetStore {
  return {
    get: (k) => {
      const v = store.getOffset(k);
      return v === undefined ? undefined : (decodePosition(v) ?? undefined);
    },
    set: (k, p) => store.setOffset(k, encodePosition(p)),
  };
}

export interface BuiltSources {
  sources: Source[];
  /** Human description of what is watched, for the start-up message. */
  watching: string[];
  /** True when nothing was configured and nothing was found. */
  nothing: boolean;
}

export function hasConfiguredSources(cfg: Config): boolean {
  const s = cfg.sources;
  return s.files.length + s.journald.length + s.ami.length > 0;
}

/** Byte-level "no event in this line" test for a file source of the given format. */
export type SkipLineFor = (format: FileSourceFormat) => SkipLine;
type FileSourceFormat = Config["sources"]["files"][number]["format"];

export function buildSources(cfg: Config, store: Store, log: Logger, skipLineFor?: SkipLineFor): BuiltSources {
  const offsets = offsetsFromStore(store);
  const sources: Source[] = [];
  const watching: string[] = [];
  let files = cfg.sources.files;
  if (!hasConfiguredSources(cfg)) {
    files = [];
    for (const d of DEFAULT_LOGS) {
      const p = d.paths.find((x) => existsSync(x));
      if (p) files.push({ path: p, format: d.server, fromStart: false, maxLineBytes: 16384 });
    }
  }
  for (const f of files) {
    sources.push(
      fileTailFromConfig(f, {
        offsets,
        logger: log.child({ source: `file:${f.path}` }),
        ...(skipLineFor && { skipLine: skipLineFor(f.format) }),
      }),
    );
    watching.push(`${f.path} (${f.format}${existsSync(f.path) || /[*?[]/.test(f.path) ? "" : ", not there yet"})`);
  }
  for (const a of cfg.sources.ami) {
    const src = new AmiSource(a, { logger: log.child({ source: `ami:${a.name ?? `${a.host}:${a.port}`}` }) });
    sources.push(src);
    watching.push(`AMI ${a.username}@${a.host}:${a.port}`);
  }
  for (const j of cfg.sources.journald) {
    const name = j.unit ?? j.identifier ?? "all";
    sources.push(journaldFromConfig(j, { offsets, logger: log.child({ source: `journald:${name}` }) }));
    watching.push(`journald ${name} (${j.format})`);
  }
  return { sources, watching, nothing: sources.length === 0 };
}
