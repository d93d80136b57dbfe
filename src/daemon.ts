/**
 * The daemon: wiring only. Builds every stage from the config, starts them in order, and
 * stops them in the reverse order. Start and stop are idempotent.
 *
 *   store → metrics → enforcer (+ reconcile) → rules/engine → notifier → ingest → API → sources
 */
import { chmodSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApi } from "./api/server.js";
import type { Control, StatusInfo } from "./api/types.js";
import { type LoadedConfig, loadConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { SipwardenError } from "./core/errors.js";
import { hostAddresses } from "./core/host-addresses.js";
import type { Logger } from "./core/logger.js";
import { runtimeWarning } from "./core/runtime.js";
import { Supervisor } from "./core/supervisor.js";
import { hostZone } from "./core/time.js";
import { BanManager, banInfo } from "./daemon/ban-manager.js";
import { Ingest } from "./daemon/ingest.js";
import { buildSources } from "./daemon/sources.js";
import { DetectionEngine } from "./detect/engine.js";
import { loadRules } from "./detect/rules.js";
import type { Decision } from "./detect/types.js";
import { createEnforcer } from "./enforce/select.js";
import type { Enforcer } from "./enforce/types.js";
import { Metrics } from "./metrics/metrics.js";
import { metricsRoute } from "./metrics/route.js";
import { createNotifier, type Notifier } from "./notify/notifier.js";
import { createCustomParser } from "./parsers/custom.js";
import type { LineParser } from "./parsers/types.js";
import { openSqliteStore } from "./store/sqlite.js";
import type { Store } from "./store/types.js";

export const VERSION = "0.1.0";
const EXPIRE_EVERY_MS = 5000;

export interface DaemonOptions {
  /** Re-reads the config (file, drop-ins and command-line overrides) for start and reload. */
  loadConfig: () => LoadedConfig;
  log: Logger;
}

/** Everything that is rebuilt on reload. */
interface Generation {
  config: Config;
  files: string[];
  engine: DetectionEngine;
  notifier: Notifier;
  custom: LineParser[];
}

export class Daemon {
  private gen: Generation | null = null;
  private store: Store | null = null;
  private enforcer: Enforcer | null = null;
  private bans: BanManager | null = null;
  private ingest: Ingest | null = null;
  private metrics: Metrics | null = null;
  private supervisor: Supervisor | null = null;
  private apis: FastifyInstance[] = [];
  private expireTimer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  private suppressed = 0;
  private readonly log: Logger;

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.log;
  }

  get config(): Config {
    if (!this.gen) throw new Error("daemon not started");
    return this.gen.config;
  }

  private buildGeneration(loaded: LoadedConfig, store: Store): Generation {
    const { config } = loaded;
    const rules = loadRules({ dirs: config.rules.dirs, disable: config.rules.disable });
    const engine = new DetectionEngine(rules, {
      policy: config.policy,
      hostAddresses: hostAddresses(),
      history: store,
      scannerAgents: config.rules.scannerAgents,
      onSuppressed: (d: Decision) => {
        this.suppressed++;
        this.metrics?.suppressed(d);
        this.log.info({ ip: d.ip, rule: d.rule, why: d.suppressed }, "ban suppressed by policy");
      },
    });
    const notifier = createNotifier(config.notify, { logger: this.log.child({ part: "notify" }) });
    const custom = config.parsers.custom.length > 0 ? [createCustomParser(config.parsers.custom)] : [];
    return { config, files: loaded.files, engine, notifier, custom };
  }

  async start(): Promise<void> {
    if (this.state !== "new") return;
    this.state = "starting";
    this.startedAt = Date.now();
    try {
      await this.startInner();
      this.state = "running";
      // performance.now() counts from the process's start: module loading is part of it.
      this.log.info(
        { version: VERSION, backend: this.enforcer?.backend, startupMs: Math.round(performance.now()) },
        "sipwarden running",
      );
    } catch (err) {
      await this.stop("start failed");
      throw err;
    }
  }

  private async startInner(): Promise<void> {
    const loaded = this.opts.loadConfig();
    const cfg = loaded.config;
    const store = openSqliteStore(cfg.store.stateDir, { recentEvents: cfg.store.recentEvents });
    this.store = store;
    const metrics = Metrics.fromConfig(cfg.metrics, { logger: this.log.child({ part: "metrics" }) });
    this.metrics = metrics;
    const gen = this.buildGeneration(loaded, store);
    this.gen = gen;

    const elog = this.log.child({ part: "enforce" });
    const enforcer = createEnforcer({
      config: cfg.enforce,
      allowlist: cfg.policy.allowlist,
      hooks: {
        onError: (err) => elog.error({ code: err.code }, err.message),
        onWarn: (m) => elog.warn(m),
        onInfo: (m) => elog.info(m),
      },
    });
    this.enforcer = enforcer;
    const runtime = runtimeWarning();
    if (runtime) this.log.warn({ node: process.versions.node }, runtime);
    if (enforcer.backend === "dry-run")
      this.log.warn(
        "DRY RUN: sipwarden detects and records bans but blocks nothing (not root, nft missing, or --backend dry-run)",
      );
    await enforcer.start();
    const active = store.activeBans(Date.now());
    const rec = await enforcer.reconcile(active.map((b) => ({ target: b.target, expiresAt: b.expiresAt })));
    this.log.info({ backend: enforcer.backend, restored: active.length, ...rec }, "firewall reconciled with the store");
    metrics.seed(active);
    metrics.setInfo(VERSION, enforcer.backend);
    metrics.bind({
      sources: () => this.supervisor?.health() ?? [],
      enforcer: () => this.enforcer,
      notifier: () => this.gen?.notifier.stats() ?? {},
      engine: () => this.gen?.engine.stats() ?? null,
    });

    this.bans = new BanManager(store, enforcer, gen.notifier, this.log.child({ part: "ban" }), (t) =>
      this.gen?.engine.forget(t),
    );
    this.bans.listen(metrics.banListener);
    this.ingest = new Ingest(
      gen.engine,
      this.bans,
      store,
      cfg.time.zone ?? hostZone(),
      gen.custom,
      this.log.child({ part: "ingest" }),
      metrics.hooks,
      cfg.store.recentEvents,
    );
    this.expireTimer = setInterval(() => this.bans?.expire(), EXPIRE_EVERY_MS);
    this.expireTimer.unref();

    await this.startApi(cfg);
    this.startSources(cfg);
    gen.notifier.lifecycle("start", { version: VERSION, activeBans: active.length });
  }

  private startSources(cfg: Config): void {
    const ingest = this.ingest!;
    const built = buildSources(cfg, this.store!, this.log, (format) => (b, s, e) => ingest.skipLine(format, b, s, e));
    this.supervisor = new Supervisor(built.sources, this.ingest!.handle, {
      logger: this.log.child({ part: "sources" }),
    });
    this.supervisor.start();
    if (built.nothing) {
      this.log.warn(
        "no SIP server logs found (looked for /var/log/asterisk/full, /var/log/asterisk/messages, " +
          "/var/log/freeswitch/freeswitch.log, /var/log/kamailio/kamailio.log): watching nothing. " +
          "Point sipwarden at your logs with `sipwarden run --log /path/to/log` or `sources.files` in /etc/sipwarden/sipwarden.yaml",
      );
    } else {
      this.log.info({ watching: built.watching }, `watching ${built.watching.join(", ")}`);
    }
  }

  private async startApi(cfg: Config): Promise<void> {
    const sock = cfg.api.socket;
    mkdirSync(dirname(sock), { recursive: true, mode: 0o755 });
    if (existsSync(sock)) rmSync(sock); // a stale socket from a killed daemon
    const control = this.control();
    const local = buildApi(control);
    await local.listen({ path: sock });
    chmodSync(sock, 0o660);
    this.apis.push(local);
    if (cfg.api.tcp) {
      const t = cfg.api.tcp;
      const loopback = t.host === "127.0.0.1" || t.host === "::1" || t.host === "localhost";
      if (!loopback && !t.token)
        throw new SipwardenError("CONFIG_INVALID", "api.tcp listens beyond localhost and needs a token", {
          path: "api.tcp.token",
        });
      // Prometheus is served here only: a scraper reaches TCP, and the token guards it like the rest.
      const prom = this.metrics?.prometheus;
      const tcp = buildApi(control, {
        ...(t.token ? { token: t.token } : {}),
        ...(prom ? { extend: metricsRoute(prom) } : {}),
      });
      await tcp.listen({ host: t.host, port: t.port });
      this.apis.push(tcp);
    }
    this.log.info(
      {
        socket: sock,
        tcp: cfg.api.tcp ? `${cfg.api.tcp.host}:${cfg.api.tcp.port}` : undefined,
        metrics: cfg.api.tcp && this.metrics?.prometheus ? "/metrics" : undefined,
      },
      "control API listening",
    );
  }

  /** Reloads config and rules; bans, offsets and history stay (they live in the store). */
  async reload(): Promise<{ rules: number; files: string[] }> {
    if (this.state !== "running" || !this.gen || !this.store) throw new Error("daemon is not running");
    const loaded = this.opts.loadConfig(); // throws on a bad config: the old one stays in force
    const old = this.gen;
    const gen = this.buildGeneration(loaded, this.store);
    this.gen = gen;
    this.metrics?.retireNotifier(old.notifier.stats());
    this.bans!.rewire(gen.notifier, (t) => gen.engine.forget(t));
    this.ingest!.rewire(gen.engine, gen.config.time.zone ?? hostZone(), gen.custom);
    if (JSON.stringify(old.config.sources) !== JSON.stringify(gen.config.sources)) {
      await this.supervisor?.stop();
      this.metrics?.retireSources(this.supervisor?.health() ?? []);
      this.ingest!.flush(true);
      this.startSources(gen.config);
    }
    if (JSON.stringify(old.config.enforce) !== JSON.stringify(gen.config.enforce))
      this.log.warn("enforce settings changed: they take effect at the next restart");
    if (JSON.stringify(old.config.api) !== JSON.stringify(gen.config.api))
      this.log.warn("api settings changed: they take effect at the next restart");
    if (JSON.stringify(old.config.metrics) !== JSON.stringify(gen.config.metrics))
      this.log.warn("metrics settings changed: they take effect at the next restart");
    void old.notifier.close(2000);
    this.log.info({ rules: gen.engine.rules.length, files: gen.files }, "reloaded");
    return { rules: gen.engine.rules.length, files: gen.files };
  }

  async stop(reason = "stopped"): Promise<void> {
    if (this.state === "stopping" || this.state === "stopped") return;
    this.state = "stopping";
    if (this.expireTimer) clearInterval(this.expireTimer);
    await this.supervisor?.stop().catch((err) => this.log.error({ err }, "stopping sources"));
    this.ingest?.flush(true);
    for (const api of this.apis.reverse()) await api.close().catch(() => {});
    this.apis = [];
    if (this.gen) {
      this.gen.notifier.lifecycle("stop", { reason, activeBans: this.store?.activeBans(Date.now()).length ?? 0 });
      await this.gen.notifier.close(5000).catch(() => {});
    }
    await this.enforcer?.close().catch((err) => this.log.error({ err }, "closing the firewall backend"));
    // Last before the store: the final unbans and events above still reach StatsD.
    await this.metrics?.close();
    this.store?.close();
    this.state = "stopped";
    this.log.info({ reason }, "sipwarden stopped");
  }

  private control(): Control {
    return {
      status: () => this.status(),
      bans: () => this.store!.activeBans(Date.now()).map(banInfo),
      ban: async (req) => banInfo(await this.bans!.manual(req.target, req.durationMs, req.reason, "api")),
      unban: (target, by = "api") => this.bans!.unban(target, by),
      reload: () => this.reload(),
      recentEvents: (limit) => this.store!.recentEvents(limit),
      subscribe: (fn) => this.ingest!.subscribe(fn),
    };
  }

  status(): StatusInfo {
    const gen = this.gen!;
    const st = gen.engine.stats();
    return {
      version: VERSION,
      pid: process.pid,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      backend: this.enforcer?.backend ?? "none",
      dryRun: this.enforcer?.backend === "dry-run",
      sources: (this.supervisor?.health() ?? []).map((h) => ({
        id: h.id,
        state: h.state,
        restarts: h.restarts,
        ...(h.lastError ? { lastError: h.lastError } : {}),
        ...(h.detail ? { detail: h.detail } : {}),
      })),
      rules: gen.engine.rules.map((r) => ({ id: r.id, description: r.description, simulate: r.simulate })),
      activeBans: this.store!.activeBans(Date.now()).length,
      eventsPerMinute: this.ingest!.eventsPerMinute(),
      eventsTotal: this.ingest!.totals.events,
      hostileTotal: st.hostile,
      suppressedTotal: this.suppressed,
      configFiles: gen.files,
    };
  }
}

/** Loads a config file (optional unless given explicitly) and applies command-line overrides. */
export function configLoader(path: string, explicit: boolean, override: (c: Config) => Config): () => LoadedConfig {
  return () => {
    const loaded = loadConfig(path, explicit);
    return { config: Object.freeze(override(loaded.config)), files: loaded.files };
  };
}
