// Placeholder: the real parser is being written; see test/fixtures/logs/freeswitch/.
import type { LineParser } from "./types.js";

export const freeswitchParser: LineParser = {
  server: "freeswitch",
  patterns: [],
  needles: [],
  parse: () => null,
};
