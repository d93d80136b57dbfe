/**
 * `sipwarden firewall`, run as a real process. The dry-run cases need nothing; the kernel
 * cases run inside a namespace created here (root only, or CI).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createLab, type Lab, labSkip } from "../helpers/netns.js";
import { ROOT } from "../helpers/paths.js";

const MAIN = join(ROOT, "src", "main.ts");
const cli = (args: string[]) => [process.execPath, "--import", "tsx", MAIN, "firewall", ...args];

function runHere(args: string[]) {
  const r = spawnSync(cli(args)[0]!, cli(args).slice(1), { cwd: ROOT, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("dry-run: a ban is reported, with the loud warning, and changes nothing", () => {
  const r = runHere(["ban", "198.51.100.7", "--for", "1h", "--backend", "dry-run", "--no-config"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "banned 198.51.100.7 for 1h (dry-run)\n");
  assert.match(r.stderr, /DRY RUN .*NOTHING IS BLOCKED/);
  assert.match(r.stderr, /would run: add element inet sipwarden addr4 \{ 198\.51\.100\.7 timeout 59m59s\d+ms \}/);
});

test("refused and invalid targets and bad durations fail with their codes", () => {
  const lo = runHere(["ban", "127.0.0.1", "--backend", "dry-run", "--no-config"]);
  assert.equal(lo.code, 1);
  assert.match(lo.stderr, /refusing to ban 127\.0\.0\.1: it is a loopback/);
  const bad = runHere(["ban", "1.2.3.400", "--backend", "dry-run", "--no-config"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /not an IP address or CIDR/);
  const dur = runHere(["ban", "198.51.100.7", "--for", "soon", "--backend", "dry-run", "--no-config"]);
  assert.equal(dur.code, 64);
  const backend = runHere(["list", "--backend", "iptables", "--no-config"]);
  assert.equal(backend.code, 64);
});

describe("firewall command against the kernel", { skip: labSkip(["nft", "ipset", "iptables"]) }, () => {
  let lab: Lab;
  const run = async (args: string[]) => lab.exec("box", cli(args), { allowFail: true, cwd: ROOT });

  before(async () => {
    lab = await createLab({ nodes: [{ name: "box", addrs: ["203.0.113.10/32"] }] });
  });
  after(async () => {
    await lab?.cleanup();
  });

  test("nftables: ban, list, unban, remove", async () => {
    let r = await run(["ban", "198.51.100.7", "--for", "1h", "--no-config"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "banned 198.51.100.7 for 1h (nftables)\n");
    r = await run(["ban", "2001:db8:bad::9/64", "--no-config"]);
    assert.equal(r.code, 0, r.stderr);
    const set = await lab.exec("box", ["nft", "list", "set", "inet", "sipwarden", "addr4"]);
    assert.match(set.stdout, /198\.51\.100\.7 timeout 59m59s\d+ms expires/);

    r = await run(["list", "--json", "--no-config"]);
    const listed = JSON.parse(r.stdout) as {
      backend: string;
      bans: Array<{ target: string; remainingSeconds: number | null }>;
    };
    assert.equal(listed.backend, "nftables");
    assert.deepEqual(
      listed.bans.map((b) => b.target),
      ["198.51.100.7", "2001:db8:bad::/64"],
    );
    assert.ok(listed.bans[0]!.remainingSeconds! > 3500 && listed.bans[1]!.remainingSeconds === null);
    r = await run(["list", "--no-config"]);
    assert.match(r.stdout, /^TARGET\s+REMAINING\n198\.51\.100\.7\s+5\dm\d+s\n2001:db8:bad::\/64\s+permanent\n$/);

    r = await run(["ban", "203.0.113.10", "--no-config"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /one of this host's own addresses/);

    r = await run(["unban", "198.51.100.7", "--no-config"]);
    assert.equal(r.code, 0, r.stderr);
    r = await run(["list", "--json", "--no-config"]);
    assert.deepEqual(
      (JSON.parse(r.stdout) as { bans: Array<{ target: string }> }).bans.map((b) => b.target),
      ["2001:db8:bad::/64"],
    );
    r = await run(["remove", "--no-config"]);
    assert.equal(r.code, 0, r.stderr);
    const tables = await lab.exec("box", ["nft", "list", "tables"]);
    assert.doesNotMatch(tables.stdout, /sipwarden/);
  });

  test("ipset backend and a custom table name", async () => {
    let r = await run(["ban", "198.51.100.8", "--for", "10m", "--backend", "ipset", "--table", "swcli", "--no-config"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "banned 198.51.100.8 for 10m (ipset)\n");
    const sets = await lab.exec("box", ["ipset", "list", "swcli-addr4"]);
    assert.match(sets.stdout, /198\.51\.100\.8 timeout (59\d|600)/);
    r = await run(["remove", "--backend", "ipset", "--table", "swcli", "--no-config"]);
    assert.equal(r.code, 0, r.stderr);
    const after = await lab.exec("box", ["ipset", "list", "-n"]);
    assert.doesNotMatch(after.stdout, /swcli/);
  });
});
