// Placeholder: the real parser is being written; see test/fixtures/logs/kamailio/.
import type { LineParser } from "./types.js";

export const kamailioParser: LineParser = {
  server: "kamailio",
  patterns: [],
  needles: [],
  parse: () => null,
};
