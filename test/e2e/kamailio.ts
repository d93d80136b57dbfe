/**
 * The lab PBX: Debian's Kamailio 5.6 in the foreground (`-DD`) inside the pbx namespace, with
 * test/e2e/kamailio/kamailio.cfg, a private db_text copy and a binrpc control socket.
 *
 * Its log (the file sipwarden tails) is `<workDir>/kamailio.log`, written one of two ways:
 * - "syslog" (the default, what docs/kamailio.md recommends): each log record goes as one UDP
 *   datagram (log_custom) to tools/syslog-sink.ts, which writes it as ONE line like rsyslog:
 *   `2026-…+00:00 pbx /usr/sbin/kamailio[2146]: NOTICE: {…} <script>: IPS: auth-failed …`,
 *   line breaks inside a record escaped as `#012`.
 * - "stderr" (`-E`, redirected): ` 2(25535) NOTICE: {…} <script>: IPS: auth-failed …`, no
 *   timestamp, and a record's line breaks (an echoed bad request) start new physical lines, so an
 *   attacker can forge a whole line. Kept to show that attack (scenario 5).
 */
import { closeSync, cpSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/paths.js";
import { mustRun, Proc, run, waitFor } from "./procs.js";

export const KAMAILIO_DIR = join(ROOT, "test", "e2e", "kamailio");
const SINK = join(ROOT, "test", "e2e", "tools", "syslog-sink.ts");
/** Where the syslog sink listens, inside the PBX namespace. */
const SINK_PORT = 5514;

export type LogMode = "syslog" | "stderr";

export interface KamailioOptions {
  /** Namespace to run in. */
  ns: string;
  /** Address to listen on (UDP and TCP 5060). */
  ip: string;
  /** Private directory for the log, db copy, control socket and pid file. */
  workDir: string;
  /** pike reqs_density_per_unit (per 2 s). The cfg's default is the stock 16. */
  pikeDensity?: number;
  logMode: LogMode;
  /** Extra `-A` defines. */
  defines?: string[];
}

export class Kamailio {
  readonly logFile: string;
  readonly ctlSocket: string;
  #proc: Proc | null = null;
  #sink: Proc | null = null;

  private constructor(readonly opts: KamailioOptions) {
    this.logFile = join(opts.workDir, "kamailio.log");
    this.ctlSocket = join(opts.workDir, "kamailio-ctl.sock");
  }

  static async start(opts: KamailioOptions): Promise<Kamailio> {
    const k = new Kamailio(opts);
    await k.#start();
    return k;
  }

  async #start(): Promise<void> {
    const { ns, ip, workDir } = this.opts;
    const db = join(workDir, "db");
    cpSync(join(KAMAILIO_DIR, "db"), db, { recursive: true });
    const syslog = this.opts.logMode === "syslog";
    if (syslog) await this.#startSink();
    const args = [
      "-DD",
      ...(syslog ? [] : ["-E"]),
      "-m",
      "64",
      "-M",
      "8",
      "-Y",
      workDir,
      "-P",
      join(workDir, "kamailio.pid"),
      "-f",
      join(KAMAILIO_DIR, "kamailio.cfg"),
      "-A",
      `DBURL="text://${db}"`,
      "-A",
      `CTLSOCK="unix:${this.ctlSocket}"`,
      "-A",
      `PBX_IP="${ip}"`,
    ];
    if (this.opts.pikeDensity !== undefined) args.push("-A", `PIKE_DENSITY=${this.opts.pikeDensity}`);
    if (syslog) args.push("-A", "WITH_SYSLOG_UDP", "-A", `SYSLOG_UDP="127.0.0.1:${SINK_PORT}"`);
    for (const d of this.opts.defines ?? []) args.push("-A", d);
    // O_APPEND: every Kamailio process writes whole lines to the same file without overlap.
    // In syslog mode only Kamailio's start-up banner lands there; the records go to the sink.
    const fd = openSync(syslog ? join(workDir, "kamailio.stderr") : this.logFile, "a");
    try {
      this.#proc = new Proc("kamailio", args, { ns, timeoutMs: 30 * 60_000, stdio: ["ignore", fd, fd] });
    } finally {
      closeSync(fd);
    }
    const ok = await waitFor(
      async () => {
        if (this.#proc?.exited) return false;
        const r = await run("kamcmd", ["-s", `unix:${this.ctlSocket}`, "core.uptime"], { timeoutMs: 3000 });
        return r.code === 0 && r.stdout.includes("uptime") ? true : undefined;
      },
      // About a second here; wide because a shared CI VM can stall for many seconds.
      60_000,
      200,
    );
    if (ok !== true) {
      await this.stop();
      throw new Error(`kamailio did not start; log tail:\n${this.log().slice(-3000)}`);
    }
  }

  async #startSink(): Promise<void> {
    const { ns, workDir } = this.opts;
    this.#sink = new Proc(
      process.execPath,
      ["--import", "tsx", SINK, "127.0.0.1", String(SINK_PORT), this.logFile, "pbx"],
      {
        ns,
        cwd: ROOT,
        timeoutMs: 30 * 60_000,
      },
    );
    const ok = await waitFor(
      () => (this.#sink?.output().includes("ready") ? true : this.#sink?.exited ? false : undefined),
      60_000,
      50,
    );
    if (ok !== true) throw new Error(`the syslog sink did not start in ${workDir}: ${this.#sink.output()}`);
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** `kamcmd <args>` against this instance's control socket. */
  kamcmd(args: readonly string[]): Promise<string> {
    return mustRun("kamcmd", ["-s", `unix:${this.ctlSocket}`, ...args], { timeoutMs: 5000 });
  }

  /** Requests received per source address (the cfg counts each request before anything can drop it). */
  async received(): Promise<Map<string, number>> {
    const out = await this.kamcmd(["htable.dump", "rx"]);
    const m = new Map<string, number>();
    for (const x of out.matchAll(/name: (\S+)\s+value: (\d+)/g)) m.set(x[1]!, Number(x[2]));
    return m;
  }

  /** When Kamailio received the first request from each source address (ms since epoch, its clock). */
  async firstRequests(): Promise<Map<string, number>> {
    const out = await this.kamcmd(["htable.dump", "rxfirst"]);
    const m = new Map<string, number>();
    for (const x of out.matchAll(/name: (\S+)\s+value: (\d+(?:\.\d+)?)/g))
      m.set(x[1]!, Math.round(Number(x[2]) * 1000));
    return m;
  }

  /** Kamailio's own core:rcv_requests counter (all sources). */
  async rcvRequests(): Promise<number> {
    const out = await this.kamcmd(["stats.get_statistics", "core:rcv_requests"]);
    const m = /core:rcv_requests = (\d+)/.exec(out);
    if (!m) throw new Error(`unexpected kamcmd output: ${out}`);
    return Number(m[1]);
  }

  /** The whole log so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** Log lines so far (split on LF only, so a CR that Kamailio wrote stays visible). */
  lines(): string[] {
    return this.log().split("\n");
  }

  async stop(): Promise<void> {
    await this.#proc?.stop(5000);
    if (this.#sink) {
      // Kamailio's last records are in flight on loopback: let the sink write them.
      await new Promise((r) => setTimeout(r, 200));
      await this.#sink.stop();
    }
  }
}
