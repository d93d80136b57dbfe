/** The host's own interface addresses: never banned, whatever a log line says. */
import { networkInterfaces } from "node:os";
import { normalizeIp } from "./address.js";

export function hostAddresses(): string[] {
  const out = new Set<string>(["127.0.0.1", "::1"]);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const ip = normalizeIp(a.address.split("%")[0]!);
      if (ip) out.add(ip);
    }
  }
  return [...out];
}
