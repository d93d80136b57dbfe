// Placeholder: the real parser is being written; see test/fixtures/logs/asterisk/.
import type { LineParser } from "./types.js";

export const asteriskParser: LineParser = {
  server: "asterisk",
  patterns: [],
  needles: [],
  parse: () => null,
};
