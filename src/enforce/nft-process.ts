/**
 * Talks to nft. Spawning one `nft` per ban costs about 2.5 ms, which alone would miss the
 * 3 ms latency target, so small transactions go to one long-lived `nft -i` process (about
 * 0.25 ms each) and large ones to a fresh `nft -f -` (libedit makes `nft -i` slow on lines of
 * megabytes, and a fresh process has no such limit).
 *
 * `nft -i` runs every input line as one atomic transaction, prints errors to stderr and keeps
 * going, and block-buffers stdout. So the end of each transaction is found on stderr: every
 * command line is followed by a marker line that is a deliberate syntax error, whose echo
 * (`Error: syntax error…`, the marker, a caret line) arrives after any error of the command.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { SipwardenError } from "../core/errors.js";
import { childEnv, clipStderr, netnsPrefix, runCommand } from "./run.js";

export interface NftClientOptions {
  netns?: string;
  /** Scripts longer than this (in characters) use a fresh `nft -f -`. */
  interactiveMaxChars?: number;
  /** Per-command limit before the process is killed and the command fails. */
  timeoutMs?: number;
  /** Set false to always spawn `nft -f -` (the fallback, and the baseline in benchmarks). */
  interactive?: boolean;
  /** Called when the interactive process dies or cannot start; the client falls back. */
  onWarn?: (message: string) => void;
}

/** Thrown for an nft error that a retry of the same text would not fix by itself. */
export function nftFailure(what: string, stderr: string): SipwardenError {
  return new SipwardenError("ENFORCER_FAILED", `nft ${what} failed: ${clipStderr(stderr)}`);
}

interface Waiter {
  marker: string;
  errors: string[];
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A process gone or stuck: the command may be tried again elsewhere. */
class ProcessLost extends Error {}

const CARET_LINE = /^\s*\^+\s*$/;

/** One long-lived `nft -i`; not exported: `NftClient` decides when to use it. */
class NftInteractive {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly waiting: Waiter[] = [];
  private buf = "";
  /** Lines of stderr since the last marker: they belong to the command in front. */
  private collected: string[] = [];
  private skipCaret = false;
  private seq = 0;
  private readonly id = `${process.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

  constructor(
    private readonly argv: string[],
    private readonly timeoutMs: number,
    private readonly onExit: (why: string) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== null;
  }

  start(): Promise<void> {
    const [program, ...args] = this.argv;
    const child = spawn(program!, args, { stdio: ["pipe", "pipe", "pipe"], env: childEnv() });
    this.child = child;
    // stdout is only read so that the pipe never fills; nothing we send prints there.
    child.stdout.resume();
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => this.onStderr(d));
    child.stdin.on("error", () => {});
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new ProcessLost(why));
      }
      this.onExit(why);
    };
    child.on("error", (e) => gone(`nft -i: ${e.message}`));
    child.on("exit", (code, signal) => gone(`nft -i exited (${signal ?? code})`));
    // A first no-op round trip proves the process runs and understands us.
    return this.run("");
  }

  /** Runs one transaction: `line` must not contain a newline. Empty = only the marker. */
  run(line: string): Promise<void> {
    const child = this.child;
    if (!child) return Promise.reject(new ProcessLost("nft -i is not running"));
    const marker = `sipwarden_sync_${this.id}_${++this.seq}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
      }, this.timeoutMs);
      timer.unref();
      this.waiting.push({ marker, errors: [], resolve, reject, timer });
      child.stdin.write(line === "" ? `${marker}\n` : `${line}\n${marker}\n`);
    });
  }

  private onStderr(chunk: string): void {
    this.buf += chunk;
    let nl = this.buf.indexOf("\n");
    while (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
      nl = this.buf.indexOf("\n");
    }
  }

  private onLine(line: string): void {
    const head = this.waiting[0];
    if (head && line === head.marker) {
      this.waiting.shift();
      clearTimeout(head.timer);
      // The line before the marker is the marker's own "Error: syntax error" header.
      const mine = this.collected.at(-1)?.startsWith("Error") ? this.collected.slice(0, -1) : this.collected;
      this.collected = [];
      this.skipCaret = true;
      const failed = mine.some((l) => l.startsWith("Error"));
      if (failed) head.reject(nftFailure("transaction", mine.join("\n")));
      else head.resolve();
      return;
    }
    if (this.skipCaret && CARET_LINE.test(line)) {
      this.skipCaret = false;
      return;
    }
    this.skipCaret = false;
    this.collected.push(line);
  }

  close(): Promise<void> {
    const child = this.child;
    if (!child) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill("SIGKILL"), 2000);
      t.unref();
      child.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      child.stdin.end();
    });
  }
}

/**
 * Runs nft scripts, as fast as the machine allows, in a namespace when asked. A script is a
 * list of commands that must be applied atomically.
 */
export class NftClient {
  private interactive: NftInteractive | null = null;
  private readonly useInteractive: boolean;
  private readonly maxChars: number;
  private readonly timeoutMs: number;
  private readonly prefix: string[];
  /** Not before this time (ms epoch) do we start another `nft -i` after one died. */
  private restartAfter = 0;
  private restartDelay = 250;
  private closed = false;

  constructor(private readonly opts: NftClientOptions = {}) {
    this.useInteractive = opts.interactive ?? true;
    this.maxChars = opts.interactiveMaxChars ?? 64 * 1024;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.prefix = netnsPrefix(opts.netns);
  }

  /** The interactive process's pid, when one runs (tests kill it to prove the fallback). */
  get interactivePid(): number | undefined {
    return this.interactive?.pid;
  }

  /** Applies `commands` as one transaction. Rejects with `ENFORCER_FAILED` and nft's stderr. */
  async apply(commands: readonly string[]): Promise<{ via: "interactive" | "spawn"; ms: number }> {
    if (commands.length === 0) return { via: "interactive", ms: 0 };
    for (const c of commands)
      if (c.includes("\n")) throw new SipwardenError("ENFORCER_FAILED", "nft command contains a newline");
    const started = performance.now();
    const line = commands.join("; ");
    if (line.length <= this.maxChars) {
      const ia = await this.ensureInteractive();
      if (ia) {
        try {
          await ia.run(line);
          return { via: "interactive", ms: performance.now() - started };
        } catch (e) {
          if (!(e instanceof ProcessLost)) throw e;
          // The process died under us: the transaction may or may not have landed. Every
          // script we send is idempotent, so applying it again through a fresh process is safe.
        }
      }
    }
    await this.spawnScript(`${commands.join("\n")}\n`, "transaction");
    return { via: "spawn", ms: performance.now() - started };
  }

  /** Runs `nft -j <args>` and returns its parsed JSON (reads do not need atomicity). */
  async json(args: readonly string[]): Promise<unknown> {
    const r = await runCommand([...this.prefix, "nft", "-j", ...args], { timeoutMs: this.timeoutMs * 4 });
    if (r.code !== 0) throw nftFailure(args.join(" "), r.stderr);
    try {
      return JSON.parse(r.stdout) as unknown;
    } catch (cause) {
      throw new SipwardenError("ENFORCER_FAILED", `nft ${args.join(" ")}: unreadable JSON`, { cause });
    }
  }

  /** `nft -f -` with `script` on stdin. */
  async spawnScript(script: string, what: string): Promise<void> {
    const r = await runCommand([...this.prefix, "nft", "-f", "-"], { input: script, timeoutMs: this.timeoutMs * 4 });
    if (r.code !== 0) throw nftFailure(what, r.stderr);
  }

  private async ensureInteractive(): Promise<NftInteractive | null> {
    if (!this.useInteractive || this.closed) return null;
    if (this.interactive?.alive) return this.interactive;
    if (Date.now() < this.restartAfter) return null;
    const ia = new NftInteractive([...this.prefix, "nft", "-i"], this.timeoutMs, (why) => {
      if (this.closed) return;
      this.opts.onWarn?.(`${why}; using one nft process per batch until it restarts`);
      this.restartAfter = Date.now() + this.restartDelay;
      this.restartDelay = Math.min(this.restartDelay * 2, 30_000);
    });
    this.interactive = ia;
    try {
      await ia.start();
      this.restartDelay = 250;
      return ia;
    } catch {
      this.interactive = null;
      return null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const ia = this.interactive;
    this.interactive = null;
    await ia?.close();
  }
}
