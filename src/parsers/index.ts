/**
 * The parser registry and per-line format detection.
 */
import type { SecurityEvent } from "../core/events.js";
import { asteriskParser } from "./asterisk.js";
import { asteriskRoute } from "./asterisk-skip.js";
import { freeswitchParser } from "./freeswitch.js";
import { kamailioParser } from "./kamailio.js";
import type { LineParser, LineRouter, ParseContext } from "./types.js";

export type LogFormat = "asterisk" | "kamailio" | "freeswitch";
export const BUILTIN_PARSERS: Readonly<Record<LogFormat, LineParser>> = {
  asterisk: asteriskParser,
  kamailio: kamailioParser,
  freeswitch: freeswitchParser,
};

/** Byte-level routers per format, for bulk readers (see asterisk-skip.ts); DIRECT lines go to `parser`. */
const ROUTERS: Partial<Record<LogFormat, { route: LineRouter; parser: LineParser }>> = {
  asterisk: { route: asteriskRoute, parser: asteriskParser },
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
    // A router is exact only for its own format's lines; other built-in formats cannot parse
    // an Asterisk-prefixed line, but a custom pattern could, so custom parsers turn it off.
    const r = extra.length === 0 ? (format === "auto" ? ROUTERS.asterisk : ROUTERS[format]) : undefined;
    this.route = r?.route;
    this.direct = r?.parser ?? null;
  }

  /**
   * For bulk readers: a byte-level look at the line's start (skip it, give it to `parseDirect`
   * without the needle prefilter, or neither). Undefined when no router applies.
   */
  readonly route: LineRouter | undefined;
  private readonly direct: LineParser | null;

  /** Parses a line `route` called DIRECT. */
  parseDirect(line: string, ctx: ParseContext): SecurityEvent | null {
    return this.direct !== null ? this.direct.parse(line, ctx) : this.parse(line, ctx);
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

export type { LineParser, LineRouter, ParseContext, Route } from "./types.js";
export { ROUTE_DIRECT, ROUTE_NEEDLES, ROUTE_SKIP } from "./types.js";
