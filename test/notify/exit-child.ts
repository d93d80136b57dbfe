/**
 * Child process of notifier.test.ts (not a test itself): builds a notifier with long batch and
 * digest timers, queues a ban, and returns without closing it. The process must still exit:
 * the notifier's timers may not keep it alive.
 */
import { configSchema } from "../../src/config/schema.js";
import { createNotifier } from "../../src/notify/notifier.js";
import { silentLogger } from "../../src/notify/types.js";

const config = configSchema.parse({
  notify: {
    email: { host: "127.0.0.1", port: 9, from: "a@example.net", to: ["b@example.net"], batch: "1h", digest: "1d" },
    webhooks: [{ url: "http://127.0.0.1:9/hook", batch: "1h" }],
  },
});
const notifier = createNotifier(config.notify, { logger: silentLogger, host: "pbx1" });
notifier.banned({
  target: "198.51.100.7",
  rule: "r",
  reason: "x",
  count: 1,
  duration: 60_000,
  first: 0,
  last: 0,
});
process.stdout.write("queued\n");
