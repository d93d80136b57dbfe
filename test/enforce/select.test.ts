import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultConfig } from "../../src/config/load.js";
import { isSipwardenError } from "../../src/core/errors.js";
import { createEnforcer, type HostCapabilities, selectBackend } from "../../src/enforce/select.js";

const full: HostCapabilities = { isRoot: true, hasNft: true, hasIpset: true, hasIptables: true };
const unavailable = (e: unknown) => isSipwardenError(e, "ENFORCER_UNAVAILABLE");

test("auto picks nftables when root with nft, otherwise a dry run that says why", () => {
  assert.deepEqual(selectBackend("auto", full), { backend: "nftables" });
  assert.deepEqual(selectBackend("auto", { ...full, isRoot: false }), {
    backend: "dry-run",
    reason: "not running as root",
  });
  assert.deepEqual(selectBackend("auto", { ...full, hasNft: false }), {
    backend: "dry-run",
    reason: "the nft program is not installed",
  });
});

test("an explicitly requested backend that cannot work is an error, never a silent dry run", () => {
  assert.throws(() => selectBackend("nftables", { ...full, isRoot: false }), unavailable);
  assert.throws(() => selectBackend("nftables", { ...full, hasNft: false }), unavailable);
  assert.throws(() => selectBackend("ipset", { ...full, hasIpset: false }), unavailable);
  assert.throws(() => selectBackend("ipset", { ...full, hasIptables: false }), unavailable);
  assert.deepEqual(selectBackend("ipset", full), { backend: "ipset" });
  assert.equal(selectBackend("dry-run", full).backend, "dry-run");
});

test("createEnforcer builds the selected backend from the config section", () => {
  const config = defaultConfig().enforce;
  assert.equal(createEnforcer({ config, host: full }).backend, "nftables");
  assert.equal(createEnforcer({ config: { ...config, backend: "ipset" }, host: full }).backend, "ipset");
  assert.equal(createEnforcer({ config, host: { ...full, isRoot: false } }).backend, "dry-run");
  assert.throws(() => createEnforcer({ config: { ...config, table: "no way" }, host: full }), /bad table name/);
});
