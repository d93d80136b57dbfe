import assert from "node:assert/strict";
import { test } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { DryRunEnforcer } from "../../src/enforce/dry-run.js";
import type { EnforceSettings } from "../../src/enforce/types.js";

const settings: EnforceSettings = {
  action: "drop",
  ports: [],
  protocols: ["udp", "tcp"],
  batchWindow: 2,
  conntrackFlush: true,
  table: "sipwarden",
};

function make(clock: { now: number }, allowlist: string[] = []) {
  const info: string[] = [];
  const warn: string[] = [];
  const e = new DryRunEnforcer({
    settings,
    allowlist,
    hostAddresses: () => ["203.0.113.10"],
    now: () => clock.now,
    reason: "not running as root",
    hooks: { onInfo: (m) => info.push(m), onWarn: (m) => warn.push(m) },
  });
  return { e, info, warn };
}

test("start warns loudly that nothing is blocked, and why", async () => {
  const { e, warn, info } = make({ now: 0 });
  await e.start();
  assert.equal(e.backend, "dry-run");
  assert.equal(warn.length, 1);
  assert.match(warn[0]!, /DRY RUN \(not running as root\): NOTHING IS BLOCKED/);
  assert.match(info[0]!, /would run: add table inet sipwarden; add set/);
});

test("it must be started first, like the real backends", async () => {
  const { e } = make({ now: 0 });
  await assert.rejects(e.add({ target: "198.51.100.7", expiresAt: null }), (x: unknown) =>
    isSipwardenError(x, "ENFORCER_UNAVAILABLE"),
  );
});

test("bans are logged as the nft commands they would be, and kept with their expiry", async () => {
  const clock = { now: 1_000_000 };
  const { e, info } = make(clock);
  await e.start();
  await e.add({ target: "198.51.100.7", expiresAt: clock.now + 3_600_000 });
  await e.add({ target: "2001:db8:bad::1/64", expiresAt: null });
  assert.ok(info.includes("dry-run: would run: add element inet sipwarden addr4 { 198.51.100.7 timeout 1h }"));
  assert.ok(info.includes("dry-run: would run: add element inet sipwarden net6 { 2001:db8:bad::/64 }"));
  assert.ok(info.some((m) => m.includes("conntrack -D --orig-src 198.51.100.7")));
  assert.deepEqual(await e.list(), [
    { target: "198.51.100.7", expiresAt: clock.now + 3_600_000 },
    { target: "2001:db8:bad::/64", expiresAt: null },
  ]);
  clock.now += 3_600_000;
  assert.deepEqual(await e.list(), [{ target: "2001:db8:bad::/64", expiresAt: null }], "expired like the kernel would");
  await e.remove("2001:db8:bad::/64");
  assert.deepEqual(await e.list(), []);
  const s = e.stats();
  assert.equal(s.added, 2);
  assert.equal(s.removed, 1);
  assert.equal(s.commands, 0, "no program ran");
  await e.close();
});

test("refusals and invalid addresses are errors with codes, before anything is logged", async () => {
  const { e, info } = make({ now: 0 }, ["192.0.2.0/24"]);
  await e.start();
  const n = info.length;
  for (const t of ["127.0.0.1", "203.0.113.10", "192.0.2.50", "::1"])
    await assert.rejects(e.add({ target: t, expiresAt: null }), (x: unknown) => isSipwardenError(x, "ADDRESS_REFUSED"));
  await assert.rejects(e.add({ target: "evil.example", expiresAt: null }), (x: unknown) =>
    isSipwardenError(x, "ADDRESS_INVALID"),
  );
  await assert.rejects(e.add({ target: "198.51.100.7", expiresAt: Number.NaN }), /bad expiry/);
  assert.equal(info.length, n);
});

test("reconcile keeps near-equal expiries, re-times the rest, drops strays, skips refused and expired", async () => {
  const clock = { now: 10_000_000 };
  const { e, warn } = make(clock);
  await e.start();
  await e.add({ target: "198.51.100.1", expiresAt: clock.now + 600_000 });
  await e.add({ target: "198.51.100.2", expiresAt: clock.now + 600_000 });
  await e.add({ target: "198.51.100.3", expiresAt: null });
  const r = await e.reconcile([
    { target: "198.51.100.1", expiresAt: clock.now + 601_000 },
    { target: "198.51.100.2", expiresAt: clock.now + 60_000 },
    { target: "198.51.100.4", expiresAt: clock.now + 60_000 },
    { target: "198.51.100.4", expiresAt: clock.now + 90_000 },
    { target: "198.51.100.5", expiresAt: clock.now - 1 },
    { target: "127.0.0.1", expiresAt: null },
  ]);
  assert.deepEqual(r, { added: 2, removed: 1, kept: 1 });
  assert.ok(warn.some((w) => w.includes("127.0.0.1")));
  assert.deepEqual(await e.list(), [
    { target: "198.51.100.1", expiresAt: clock.now + 600_000 },
    { target: "198.51.100.2", expiresAt: clock.now + 60_000 },
    { target: "198.51.100.4", expiresAt: clock.now + 90_000 },
  ]);
});

test("a hook that throws does not break enforcement", async () => {
  const e = new DryRunEnforcer({
    settings,
    hostAddresses: () => [],
    hooks: {
      onInfo: () => {
        throw new Error("logger broke");
      },
      onWarn: () => {
        throw new Error("logger broke");
      },
    },
  });
  await e.start();
  await e.add({ target: "198.51.100.7", expiresAt: null });
  assert.equal((await e.list()).length, 1);
});
