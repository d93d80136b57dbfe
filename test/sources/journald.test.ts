/**
 * The journald source against the real journalctl, reading a real journal FILE: this machine
 * (a container) runs no systemd-journald, so entries are written with systemd-journal-remote
 * (Debian package `systemd-journal-remote`), which turns journal export format into a journal
 * file that `journalctl --file=… --follow` follows as it grows.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import { fieldText, JournaldSource, journalEntryToLines } from "../../src/sources/journald.js";
import { acknowledge, decodePosition, MemoryOffsetStore } from "../../src/sources/offsets.js";
import type { RawRecord } from "../../src/sources/types.js";
import { CaptureLogger, tempDir, waitUntil } from "./file-tail-helpers.js";

const JOURNAL_REMOTE = ["/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"].find(
  existsSync,
);
const HAVE_JOURNALCTL = spawnSync("journalctl", ["--version"]).status === 0;
const skip =
  !JOURNAL_REMOTE || !HAVE_JOURNALCTL
    ? "needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)"
    : false;

interface Entry {
  unit?: string;
  ident?: string;
  pid?: number;
  message: string | Buffer;
  /** Microseconds since the epoch. */
  time: bigint;
}

let seq = 0n;
/** Append entries to a journal file through systemd-journal-remote (journal export format). */
function appendJournal(file: string, entries: Entry[]): void {
  const parts: Buffer[] = [];
  const field = (k: string, v: string | Buffer) => {
    const b = typeof v === "string" ? Buffer.from(v) : v;
    if (typeof v === "string" && !v.includes("\n")) parts.push(Buffer.from(`${k}=${v}\n`));
    else {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(b.length));
      parts.push(Buffer.from(`${k}\n`), len, b, Buffer.from("\n"));
    }
  };
  for (const e of entries) {
    field("__REALTIME_TIMESTAMP", String(e.time));
    field("__MONOTONIC_TIMESTAMP", String(++seq));
    field("_BOOT_ID", "0123456789abcdef0123456789abcdef");
    field("_HOSTNAME", "sip1");
    if (e.unit) field("_SYSTEMD_UNIT", e.unit);
    if (e.ident) field("SYSLOG_IDENTIFIER", e.ident);
    if (e.pid) field("_PID", String(e.pid));
    field("MESSAGE", e.message);
    parts.push(Buffer.from("\n"));
  }
  const r = spawnSync(JOURNAL_REMOTE!, ["-o", file, "-"], { input: Buffer.concat(parts), encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

const T0 = 1_715_682_068_020_117n; // 2024-05-14T10:21:08.020117Z

class Run {
  readonly records: RawRecord[] = [];
  readonly #c = new AbortController();
  readonly done: Promise<void>;
  constructor(readonly source: JournaldSource) {
    this.done = source.run((r) => this.records.push(r), this.#c.signal);
    this.done.catch(() => {});
  }
  texts(filter = (_: string) => true): string[] {
    return this.records.map((r) => r.text).filter(filter);
  }
  async stop(): Promise<void> {
    this.#c.abort();
    await this.done;
  }
}

/**
 * journalctl starts at the end only once it has opened the journal; entries appended before
 * that would count as old. Append pings until one arrives, so the test knows it is following.
 */
async function synced(run: Run, file: string, unit: string, ident = "kamailio"): Promise<void> {
  for (let i = 0; i < 300 && !run.records.some((r) => r.text.includes("ping")); i++) {
    appendJournal(file, [{ unit, ident, pid: 1, message: `ping ${i}`, time: T0 }]);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(
    run.records.some((r) => r.text.includes("ping")),
    "journalctl never showed a ping",
  );
}

describe("journald source", { skip }, () => {
  let dir: string;
  let cleanup: () => void;
  before(() => {
    ({ dir, cleanup } = tempDir("sipwarden-journal-"));
  });
  after(() => cleanup());

  it("follows a journal from its end, with a unit filter, syslog-style lines and cursor positions", async () => {
    const file = join(dir, "follow.journal");
    appendJournal(file, [{ unit: "kamailio.service", ident: "kamailio", pid: 7, message: "old entry", time: T0 }]);
    const offsets = new MemoryOffsetStore();
    const src = new JournaldSource({ unit: "kamailio.service", files: [file], offsets, format: "kamailio" });
    const run = new Run(src);
    try {
      await synced(run, file, "kamailio.service");
      appendJournal(file, [
        {
          unit: "kamailio.service",
          ident: "/usr/sbin/kamailio",
          pid: 2146,
          message: "WARNING: pike [pike_funcs.c:135]: pike_check_ipaddr(): PIKE - BLOCKing ip 198.51.100.7, node=0x1",
          time: T0,
        },
        { unit: "asterisk.service", ident: "asterisk", pid: 9, message: "other unit", time: T0 + 1n },
        { unit: "kamailio.service", ident: "kamailio", pid: 2147, message: "second", time: T0 + 2n },
      ]);
      await waitUntil(() => run.texts((t) => t.endsWith("second")).length === 1, "the second entry");
      const texts = run.texts((t) => !t.includes("ping"));
      assert.deepEqual(texts, [
        "2024-05-14T10:21:08.020117+00:00 sip1 /usr/sbin/kamailio[2146]: WARNING: pike [pike_funcs.c:135]: pike_check_ipaddr(): PIKE - BLOCKing ip 198.51.100.7, node=0x1",
        "2024-05-14T10:21:08.020119+00:00 sip1 kamailio[2147]: second",
      ]);
      const last = run.records.at(-1)!;
      assert.equal(last.source, "journald:kamailio.service");
      assert.equal(last.format, "kamailio");
      const pos = decodePosition(last.position!);
      assert.ok(pos?.kind === "cursor" && pos.cursor.startsWith("s="));
      assert.match(src.status().detail ?? "", /journalctl pid \d+/);
    } finally {
      await run.stop();
    }
  });

  it("resumes after the committed cursor: unacknowledged entries again, nothing else twice", async () => {
    const file = join(dir, "resume.journal");
    appendJournal(file, [{ unit: "k.service", ident: "k", pid: 1, message: "setup", time: T0 }]);
    const offsets = new MemoryOffsetStore();
    const src = new JournaldSource({ unit: "k.service", files: [file], offsets });
    const run = new Run(src);
    await synced(run, file, "k.service");
    appendJournal(
      file,
      Array.from({ length: 5 }, (_, i) => ({
        unit: "k.service",
        ident: "k",
        pid: 1,
        message: `e${i}`,
        time: T0 + BigInt(i),
      })),
    );
    await waitUntil(() => run.texts((t) => t.endsWith(": e4")).length === 1, "e4");
    const es = run.records.filter((r) => /: e\d$/.test(r.text));
    for (const r of es.slice(0, 3)) acknowledge(offsets, r);
    await run.stop();
    // While stopped: more than journalctl's default 10 lines of tail, to prove --no-tail.
    appendJournal(
      file,
      Array.from({ length: 12 }, (_, i) => ({ unit: "k.service", ident: "k", pid: 1, message: `e${i + 5}`, time: T0 })),
    );
    const run2 = new Run(new JournaldSource({ unit: "k.service", files: [file], offsets }));
    try {
      await waitUntil(() => run2.texts((t) => t.endsWith(": e16")).length === 1, "e16");
      assert.deepEqual(
        run2.texts().map((t) => t.split(": ")[1]),
        Array.from({ length: 14 }, (_, i) => `e${i + 3}`),
      );
    } finally {
      await run2.stop();
    }
  });

  it("decodes binary and multi-line messages; only the last line of an entry carries the cursor", async () => {
    const file = join(dir, "binary.journal");
    appendJournal(file, [{ unit: "b.service", ident: "b", pid: 1, message: "setup", time: T0 }]);
    const run = new Run(new JournaldSource({ identifier: "b", files: [file] }));
    try {
      await synced(run, file, "b.service", "b");
      appendJournal(file, [
        { unit: "b.service", ident: "b", pid: 3, message: Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0x21]), time: T0 },
        { unit: "b.service", ident: "b", pid: 3, message: "first line\nsecond line\n", time: T0 },
      ]);
      await waitUntil(() => run.texts((t) => t.endsWith("second line")).length === 1, "the multi-line entry");
      const recs = run.records.filter((r) => !r.text.includes("ping") && !r.text.includes("setup"));
      assert.deepEqual(
        recs.map((r) => r.text.split(": ")[1]),
        ["bad \uFFFD!", "first line", "second line"],
      );
      assert.deepEqual(
        recs.map((r) => r.position !== undefined),
        [true, false, true],
      );
    } finally {
      await run.stop();
    }
  });

  it("stops journalctl on abort", async () => {
    const file = join(dir, "stop.journal");
    appendJournal(file, [{ unit: "s.service", ident: "s", message: "x", time: T0 }]);
    const src = new JournaldSource({ files: [file] });
    const run = new Run(src);
    await waitUntil(() => /pid (\d+)/.test(src.status().detail ?? ""), "journalctl to start");
    const pid = Number(/pid (\d+)/.exec(src.status().detail!)![1]);
    await run.stop();
    assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
    assert.equal(src.status().detail, "journald:all (stopped)");
  });

  it("fails its run when journalctl exits, with journalctl's complaint; a refused cursor is dropped", async () => {
    const offsets = new MemoryOffsetStore();
    offsets.set("journald:x", { kind: "cursor", cursor: "not-a-cursor" });
    const file = join(dir, "bad.journal");
    appendJournal(file, [{ unit: "x.service", ident: "x", message: "x", time: T0 }]);
    const logger = new CaptureLogger();
    const src = new JournaldSource({ id: "journald:x", files: [file], offsets, logger });
    await assert.rejects(
      src.run(() => {}, new AbortController().signal),
      (e) => {
        assert.ok(isSipwardenError(e, "SOURCE_FAILED"));
        assert.match(e.message, /journalctl exited \(status 1\): .*cursor/i);
        return true;
      },
    );
    assert.equal(logger.messages("warn").length, 1);
    assert.ok(!src.args(undefined).some((a) => a.startsWith("--after-cursor")));
    // The restarted run starts at the end instead of failing forever.
    const run = new Run(src);
    await synced(run, file, "x.service");
    await run.stop();
  });
});

describe("journald source without journalctl", () => {
  it("fails its run when the binary is missing", async () => {
    const src = new JournaldSource({ journalctl: "/nonexistent/journalctl" });
    await assert.rejects(
      src.run(() => {}, new AbortController().signal),
      (e) => isSipwardenError(e, "SOURCE_FAILED"),
    );
  });

  it("builds journalctl arguments from options (no shell: one value per argument)", () => {
    const src = new JournaldSource({ unit: "kamailio.service", files: ["rel/x.journal"] });
    const a = src.args("s=1;i=2");
    assert.ok(a.includes("--after-cursor=s=1;i=2") && a.includes("--no-tail") && !a.includes("--lines=0"));
    assert.ok(a.includes("--unit=kamailio.service"));
    assert.ok(a.some((x) => x.startsWith("--file=/") && x.endsWith("/rel/x.journal")));
    assert.ok(new JournaldSource({ identifier: "asterisk" }).args(undefined).includes("--lines=0"));
    assert.throws(
      () => new JournaldSource({ unit: "a\nb" }),
      (e) => isSipwardenError(e, "CONFIG_INVALID"),
    );
  });

  it("turns entries into syslog-style lines", () => {
    assert.deepEqual(
      journalEntryToLines(
        {
          __REALTIME_TIMESTAMP: "1715682068000005",
          __CURSOR: "c",
          MESSAGE: "NOTICE[123]: res_pjsip",
          _COMM: "asterisk",
          SYSLOG_PID: "55",
        },
        "pbx",
      ),
      { lines: ["2024-05-14T10:21:08.000005+00:00 pbx asterisk[55]: NOTICE[123]: res_pjsip"], cursor: "c" },
    );
    assert.equal(journalEntryToLines({ __REALTIME_TIMESTAMP: "1", MESSAGE: null }, "h"), null);
    assert.equal(journalEntryToLines({ MESSAGE: "no time" }, "h"), null);
    assert.equal(fieldText([[104, 105], "x"]), "hi");
    assert.equal(fieldText(["a", "b"]), "a");
  });
});
