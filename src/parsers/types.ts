import type { SecurityEvent, ServerKind } from "../core/events.js";

/** What a parser needs besides the line: it has no clock and does no I/O of its own. */
export interface ParseContext {
  /** IANA zone for timestamps that carry none (host zone by default). */
  readonly zone: string;
  /** Reference instant (epoch ms) for timestamps that carry no year. */
  readonly now: number;
}

/**
 * A pure, synchronous line parser. `parse` never throws and never takes an address from a
 * field the attacker controls. A line where an address could have been planted yields a
 * `hostile` event instead of an attack.
 */
export interface LineParser {
  readonly server: ServerKind;
  /** Every pattern id this parser can put into `SecurityEvent.pattern`. */
  readonly patterns: readonly string[];
  /**
   * Literal substrings: every line that can yield an event contains at least one of them.
   * Bulk readers use them to skip ordinary lines without decoding them.
   */
  readonly needles: readonly string[];
  parse(line: string, ctx: ParseContext): SecurityEvent | null;
}

/**
 * What a byte-level look at a line's start says (bulk readers): it certainly yields no event
 * (SKIP), it belongs to one known parser that should read it without the needle prefilter
 * (DIRECT), or nothing is known (NEEDLES: needle prefilter, then every parser).
 */
export const ROUTE_SKIP = 0;
export const ROUTE_DIRECT = 1;
export const ROUTE_NEEDLES = 2;
export type Route = typeof ROUTE_SKIP | typeof ROUTE_DIRECT | typeof ROUTE_NEEDLES;
/** A byte-level router; `end` excludes the newline. Must not allocate. */
export type LineRouter = (buf: Uint8Array, start: number, end: number) => Route;
