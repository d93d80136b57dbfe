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
