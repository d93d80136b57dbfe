/**
 * The parser registry and per-line format detection.
 */
import type { SecurityEvent } from "../core/events.js";
import { asteriskParser } from "./asterisk.js";
import { freeswitchParser } from "./freeswitch.js";
import { kamailioParser } from "./kamailio.js";
import type { LineParser, ParseContext } from "./types.js";

export type LogFormat = "asterisk" | "kamailio" | "freeswitch";
export const BUILTIN_PARSERS: Readonly<Record<LogFormat, LineParser>> = {
  asterisk: asteriskParser,
  kamailio: kamailioParser,
  freeswitch: freeswitchParser,
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
  }

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
