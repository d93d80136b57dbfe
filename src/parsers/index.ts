/**
 * The parser registry and per-line format detection.
 */
import type { SecurityEvent } from "../core/events.js";
import { asteriskParser } from "./asterisk.js";
import { asteriskSkipLine } from "./asterisk-skip.js";
import { freeswitchParser } from "./freeswitch.js";
import { kamailioParser } from "./kamailio.js";
import type { LineParser, ParseContext } from "./types.js";

export type LogFormat = "asterisk" | "kamailio" | "freeswitch";
export const BUILTIN_PARSERS: Readonly<Record<LogFormat, LineParser>> = {
  asterisk: asteriskParser,
  kamailio: kamailioParser,
  freeswitch: freeswitchParser,
};

/** Byte-level "certainly no event" tests per format, for bulk readers (see asterisk-skip.ts). */
const SKIPS: Partial<Record<LogFormat, (b: Uint8Array, s: number, e: number) => boolean>> = {
  asterisk: asteriskSkipLine,
};

/**
 * Parses a line with one format, or with every parser in turn (`auto`). Auto mode tries the
 * parser that matched last first, so a homogeneous log costs one attempt per line.
 */
export class LineClassifier {
  private readonly order: LineParser[];
  readonly needles: readonly string[];

  constructor(
    private readonly format: LogFormat | "auto" = "auto",
    extra: readonly LineParser[] = [],
  ) {
    const base = format === "auto" ? Object.values(BUILTIN_PARSERS) : [BUILTIN_PARSERS[format]];
    this.order = [...extra, ...base];
    this.needles = [...new Set(this.order.flatMap((p) => p.needles))];
    // A skip test is exact only for its own format's lines; other built-in formats cannot parse
    // an Asterisk-prefixed line, but a custom pattern could, so custom parsers turn it off.
    const skips = extra.length === 0 ? Object.values(SKIPS) : [];
    const only = format === "auto" ? skips : extra.length === 0 && SKIPS[format] ? [SKIPS[format]!] : [];
    this.skip = only.length === 0 ? undefined : only.length === 1 ? only[0] : (b, s, e) => only.some((f) => f(b, s, e));
  }

  /** For bulk readers: lines this says yes to cannot yield an event. */
  readonly skip: ((b: Uint8Array, s: number, e: number) => boolean) | undefined;

  get parsers(): readonly LineParser[] {
    return this.order;
  }

  parse(line: string, ctx: ParseContext): SecurityEvent | null {
    const order = this.order;
    for (let i = 0; i < order.length; i++) {
      const ev = order[i]!.parse(line, ctx);
      if (ev) {
        if (i > 0 && this.format === "auto") {
          // Move the winner to the front: logs are homogeneous, so the next line likely matches it too.
          const p = order[i]!;
          order.splice(i, 1);
          order.unshift(p);
        }
        return ev;
      }
    }
    return null;
  }
}

export type { LineParser, ParseContext } from "./types.js";
