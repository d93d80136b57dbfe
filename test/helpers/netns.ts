/**
 * A network-namespace lab for tests that need a real kernel: namespaces joined by a bridge,
 * with the addresses a test asks for, so that firewall rules, conntrack and real daemons can
 * be exercised without touching the host's own network or firewall.
 *
 *   const lab = await createLab({ nodes: [
 *     { name: "server", addrs: ["203.0.113.10/24", "2001:db8:203::10/64"] },
 *     { name: "attacker", addrs: ["198.51.100.7/24"] },
 *   ] });
 *   try { await lab.exec("server", ["nft", "list", "ruleset"]); } finally { await lab.cleanup(); }
 *
 * Every node gets `lo` up, one interface `eth0` on the lab bridge, and on-link default routes,
 * so nodes in different documentation subnets reach each other directly. The bridge lives in
 * a namespace of its own: nothing is created in the host's namespace. Names carry the pid and
 * a random tag, so parallel runs never collide, and namespaces left by a run that died are
 * swept by the next one.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export interface LabNodeSpec {
  /** Short name, letters and digits: the namespace is `<lab id>-<name>`. */
  name: string;
  /** Addresses with prefix length for eth0, e.g. `203.0.113.10/24`, `2001:db8::10/64`. */
  addrs?: string[];
}

export interface LabSpec {
  nodes: LabNodeSpec[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  /** Resolve with the result instead of rejecting on a non-zero exit. */
  allowFail?: boolean;
  timeoutMs?: number;
  /** Working directory of the program (the caller's by default). */
  cwd?: string;
}

export interface Lab {
  readonly id: string;
  /** The namespace name of a node. */
  ns(node: string): string;
  /** Runs a program inside a node's namespace (argument array, no shell). */
  exec(node: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running program inside a node; it is killed by `cleanup`. */
  spawn(node: string, argv: string[]): ChildProcess;
  /** Kills what `spawn` started and deletes every namespace. Idempotent. */
  cleanup(): Promise<void>;
}

const PREFIX = "swlab";
const NAME = /^[a-z][a-z0-9]{0,11}$/;
const live = new Set<string>();
let exitHook = false;

/** Why namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "not running as root";
  const probe = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return `cannot run "ip netns": ${probe.error?.message ?? probe.stderr}`;
  return null;
}

/**
 * For `test(name, { skip }, ...)`: a reason to skip when namespaces are unavailable and this
 * is not CI. Under CI=true a missing capability is a failure, so this throws instead.
 */
export function labSkip(needs: string[] = []): string | false {
  let why = netnsUnavailable();
  if (!why) {
    const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"];
    for (const cmd of needs) {
      const found = dirs.some((d) => {
        try {
          accessSync(join(d, cmd), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
      if (!found) {
        why = `${cmd} is not installed`;
        break;
      }
    }
  }
  if (!why) return false;
  if (process.env.CI === "true") throw new Error(`namespace lab required under CI but unavailable: ${why}`);
  return `namespace lab unavailable (${why}); runs in CI as root`;
}

function ipSync(args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Deletes namespaces left by lab runs whose process is gone. */
function sweepStale(): void {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const line of (r.stdout ?? "").split("\n")) {
    const m = new RegExp(`^(${PREFIX}-(\\d+)-[0-9a-f]+-[a-z0-9]+)`).exec(line.trim());
    if (!m) continue;
    const pid = Number(m[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === "EPERM";
    }
    if (!alive) spawnSync("ip", ["netns", "del", m[1]!]);
  }
}

function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ["pipe", "pipe", "pipe"], cwd: opts.cwd });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const res = { code: code ?? 1, stdout, stderr };
      if (res.code !== 0 && !opts.allowFail)
        reject(new Error(`${argv.join(" ")} exited ${res.code}: ${stderr.trim() || stdout.trim()}`));
      else resolve(res);
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

export async function createLab(spec: LabSpec): Promise<Lab> {
  const why = netnsUnavailable();
  if (why) throw new Error(`namespace lab unavailable: ${why}`);
  for (const n of spec.nodes) if (!NAME.test(n.name)) throw new Error(`bad lab node name ${JSON.stringify(n.name)}`);
  sweepStale();
  if (!exitHook) {
    exitHook = true;
    // Last resort when a test process dies without its finally blocks.
    process.on("exit", () => {
      for (const ns of live) spawnSync("ip", ["netns", "del", ns]);
    });
  }
  const id = `${PREFIX}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const nsOf = new Map(spec.nodes.map((n) => [n.name, `${id}-${n.name}`]));
  const hub = `${id}-hub`;
  const children = new Set<ChildProcess>();
  const made: string[] = [];
  let cleaned = false;

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        const gone = new Promise((r) => c.once("exit", r));
        c.kill("SIGKILL");
        await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
      }
    }
    for (const ns of made.reverse()) {
      spawnSync("ip", ["netns", "del", ns]);
      live.delete(ns);
    }
  };

  try {
    const addNs = (ns: string) => {
      ipSync(["netns", "add", ns]);
      made.push(ns);
      live.add(ns);
      ipSync(["-n", ns, "link", "set", "lo", "up"]);
    };
    if (spec.nodes.length > 1) {
      addNs(hub);
      ipSync(["-n", hub, "link", "add", "br0", "type", "bridge"]);
      ipSync(["-n", hub, "link", "set", "br0", "up"]);
    }
    spec.nodes.forEach((node, i) => {
      const ns = nsOf.get(node.name)!;
      addNs(ns);
      if (spec.nodes.length <= 1) {
        for (const a of node.addrs ?? []) ipSync(["-n", ns, "addr", "add", a, "dev", "lo"]);
        return;
      }
      // Interface names are per namespace: fixed short names cannot collide across runs.
      ipSync(["-n", hub, "link", "add", `p${i}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      ipSync(["-n", hub, "link", "set", `p${i}`, "master", "br0", "up"]);
      for (const a of node.addrs ?? [])
        ipSync(["-n", ns, "addr", "add", a, "dev", "eth0", ...(a.includes(":") ? ["nodad"] : [])]);
      ipSync(["-n", ns, "link", "set", "eth0", "up"]);
      ipSync(["-n", ns, "route", "add", "default", "dev", "eth0"]);
      if ((node.addrs ?? []).some((a) => a.includes(":")))
        ipSync(["-n", ns, "-6", "route", "add", "default", "dev", "eth0"]);
    });
  } catch (e) {
    await cleanup();
    throw e;
  }

  const ns = (node: string): string => {
    const n = nsOf.get(node);
    if (!n) throw new Error(`no lab node ${node}`);
    return n;
  };
  return {
    id,
    ns,
    exec: (node, argv, opts) => run(["ip", "netns", "exec", ns(node), ...argv], opts),
    spawn: (node, argv) => {
      const c = spawn("ip", ["netns", "exec", ns(node), ...argv], { stdio: ["pipe", "pipe", "pipe"] });
      children.add(c);
      return c;
    },
    cleanup,
  };
}

/** Creates a lab, runs `fn`, and always cleans up. */
export async function withLab<T>(spec: LabSpec, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(spec);
  try {
    return await fn(lab);
  } finally {
    await lab.cleanup();
  }
}
