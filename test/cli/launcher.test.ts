/**
 * bin/sipwarden, the command npm, scripts/install.sh and the systemd unit start sipwarden with.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LAUNCHER, startDaemon } from "../helpers/daemon-proc.js";
import { ROOT } from "../helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "sw-launcher-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for node that prints each argument it gets on a line of its own. */
function fakeNode(): string {
  const p = join(dir, "fake-node");
  writeFileSync(p, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
  chmodSync(p, 0o755);
  return p;
}

describe("bin/sipwarden", () => {
  it("is what package.json installs as the sipwarden command", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
      files: string[];
    };
    assert.equal(pkg.bin.sipwarden, "bin/sipwarden");
    assert.ok(pkg.files.includes("bin"));
  });

  it("starts dist/main.js with its V8 options and passes the arguments through unchanged", () => {
    const out = execFileSync(LAUNCHER, ["test", "--json", "a file with spaces.log", "", "it's"], {
      env: { ...process.env, SIPWARDEN_NODE: fakeNode() },
    }).toString();
    assert.deepEqual(out.split("\n").slice(0, -1), [
      "--v8-pool-size=0",
      "--initial-old-space-size=32",
      join(ROOT, "dist", "main.js"),
      "test",
      "--json",
      "a file with spaces.log",
      "",
      "it's",
    ]);
  });

  it("finds its checkout when started through a symlink (as npm and install.sh link it)", (t) => {
    const link = join(dir, "sipwarden");
    symlinkSync(LAUNCHER, link);
    const args = execFileSync(link, ["--help"], { env: { ...process.env, SIPWARDEN_NODE: fakeNode() } }).toString();
    assert.equal(args.split("\n")[2], join(ROOT, "dist", "main.js"));
    if (!existsSync(join(ROOT, "dist", "main.js"))) {
      t.skip("dist/main.js not built (npm run build)");
      return;
    }
    // With the real node on PATH: the program itself answers.
    const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
    assert.equal(execFileSync(link, ["--version"]).toString().trim(), version);
  });

  it("runs the daemon as the process it was started as (exec), so systemd's MAINPID and signals reach node", async (t) => {
    if (!existsSync(join(ROOT, "dist", "main.js"))) {
      t.skip("dist/main.js not built (npm run build)");
      return;
    }
    const d = await startDaemon({
      dir,
      launcher: true,
      args: ["--backend", "dry-run", "--log", join(dir, "none.log")],
    });
    try {
      assert.equal(d.child.spawnargs[0], LAUNCHER);
      // The PID the launcher was started as is now node itself, with the launcher's options.
      const argv = readFileSync(`/proc/${d.child.pid}/cmdline`, "utf8").split("\0").slice(0, -1);
      assert.deepEqual(argv.slice(0, 5), [
        process.execPath,
        "--v8-pool-size=0",
        "--initial-old-space-size=32",
        join(ROOT, "dist", "main.js"),
        "run",
      ]);
      assert.equal((await d.status()).dryRun, true);
    } finally {
      // SIGTERM to that PID is the daemon's clean stop.
      assert.equal(await d.stop("SIGTERM"), 0);
    }
  });

  it("says so and fails when the Node.js binary it is given does not exist", () => {
    const r = (() => {
      try {
        execFileSync(LAUNCHER, ["--version"], {
          env: { ...process.env, SIPWARDEN_NODE: join(dir, "no-such-node") },
          stdio: ["ignore", "pipe", "pipe"],
        });
        return null;
      } catch (e) {
        return e as { status: number; stderr: Buffer };
      }
    })();
    assert.ok(r, "the launcher must fail");
    assert.equal(r.status, 127);
    assert.match(
      r.stderr.toString(),
      /^sipwarden: Node\.js not found \(.*no-such-node\): install Node\.js 20 or later/,
    );
  });
});
