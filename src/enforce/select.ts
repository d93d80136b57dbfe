/**
 * Picks and builds the enforcer from the `enforce` config section. `auto` means nftables when
 * we are root and nft is installed, otherwise the dry-run backend, which warns loudly. An
 * explicitly requested backend that cannot work is an error, never a silent dry run.
 */
import type { Config } from "../config/schema.js";
import { SipwardenError } from "../core/errors.js";
import type { BackendOptions } from "./base.js";
import { DryRunEnforcer } from "./dry-run.js";
import { IpsetEnforcer, type IpsetOptions } from "./ipset.js";
import { NftablesEnforcer } from "./nftables.js";
import { findCommand } from "./run.js";
import type { BackendName, Enforcer, EnforcerHooks } from "./types.js";

export type EnforceConfig = Config["enforce"];

/** What the host offers; probed once, injectable for tests. */
export interface HostCapabilities {
  isRoot: boolean;
  hasNft: boolean;
  hasIpset: boolean;
  hasIptables: boolean;
}

export function probeHost(): HostCapabilities {
  return {
    isRoot: typeof process.getuid === "function" && process.getuid() === 0,
    hasNft: findCommand("nft") !== null,
    hasIpset: findCommand("ipset") !== null,
    hasIptables: findCommand("iptables") !== null && findCommand("iptables-restore") !== null,
  };
}

export interface Selection {
  backend: BackendName;
  /** Why dry-run was chosen automatically. */
  reason?: string;
}

export function selectBackend(requested: EnforceConfig["backend"], host: HostCapabilities): Selection {
  const missing = (what: string): never => {
    throw new SipwardenError("ENFORCER_UNAVAILABLE", `enforce.backend is ${requested}, but ${what}`);
  };
  switch (requested) {
    case "dry-run":
      return { backend: "dry-run", reason: "enforce.backend is dry-run" };
    case "nftables":
      if (!host.isRoot) missing("sipwarden is not running as root");
      if (!host.hasNft) missing("the nft program is not installed");
      return { backend: "nftables" };
    case "ipset":
      if (!host.isRoot) missing("sipwarden is not running as root");
      if (!host.hasIpset) missing("the ipset program is not installed");
      if (!host.hasIptables) missing("iptables and iptables-restore are not installed");
      return { backend: "ipset" };
    default:
      if (!host.isRoot) return { backend: "dry-run", reason: "not running as root" };
      if (!host.hasNft) return { backend: "dry-run", reason: "the nft program is not installed" };
      return { backend: "nftables" };
  }
}

export interface CreateEnforcerOptions
  extends Omit<BackendOptions, "settings">,
    Pick<IpsetOptions, "iptables" | "ip6tables"> {
  config: EnforceConfig;
  allowlist?: readonly string[];
  hooks?: EnforcerHooks;
  /** Defaults to probing this host. */
  host?: HostCapabilities;
}

export function createEnforcer(opts: CreateEnforcerOptions): Enforcer {
  const { config, host, ...rest } = opts;
  const sel = selectBackend(config.backend, host ?? probeHost());
  const base: BackendOptions = {
    ...rest,
    settings: {
      action: config.action,
      ports: config.ports,
      protocols: config.protocols,
      batchWindow: config.batchWindow,
      conntrackFlush: config.conntrackFlush,
      table: config.table,
    },
  };
  switch (sel.backend) {
    case "nftables":
      return new NftablesEnforcer(base);
    case "ipset":
      return new IpsetEnforcer({ ...base, iptables: opts.iptables, ip6tables: opts.ip6tables });
    default:
      return new DryRunEnforcer({ ...base, reason: sel.reason });
  }
}
