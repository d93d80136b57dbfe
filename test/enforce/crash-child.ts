/**
 * Run by the reconcile-after-crash tests, then killed with SIGKILL part-way: it adds bans one
 * by one and reports its progress, like a daemon in the middle of a burst.
 *
 *   node --import tsx crash-child.ts <nftables|ipset> <netns> <count> <expiresAt>
 */
import { IpsetEnforcer } from "../../src/enforce/ipset.js";
import { NftablesEnforcer } from "../../src/enforce/nftables.js";
import type { EnforceSettings } from "../../src/enforce/types.js";

const [backend, netns, countText, expiresText] = process.argv.slice(2);
const settings: EnforceSettings = {
  action: "drop",
  ports: [],
  protocols: ["udp", "tcp"],
  batchWindow: 2,
  conntrackFlush: false,
  table: "sipwarden",
};
const opts = { settings, netns, hostAddresses: () => [] };
const e = backend === "ipset" ? new IpsetEnforcer(opts) : new NftablesEnforcer(opts);
await e.start();
const expiresAt = Number(expiresText);
for (let i = 0; i < Number(countText); i++) {
  await e.add({ target: `10.77.${i >> 8}.${i & 255}`, expiresAt });
  if (i % 10 === 9) process.stdout.write(`${i + 1}\n`);
}
process.stdout.write("done\n");
await e.close();
