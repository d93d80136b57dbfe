import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FIXTURES = join(ROOT, "test", "fixtures");
/** `../shared` beside the checkout: the reference formats and third-party corpora. */
export const SHARED = join(ROOT, "..", "shared");
