import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { silentLogger } from "../../src/core/logger.js";
import type { BanManager } from "../../src/daemon/ban-manager.js";
import { Ingest } from "../../src/daemon/ingest.js";
import { DetectionEngine } from "../../src/detect/engine.js";
import type { RawRecord } from "../../src/sources/types.js";
import { openSqliteStore } from "../../src/store/sqlite.js";
import { pjsipFailure } from "../helpers/daemon-proc.js";

function setup(recentCap: number) {
  const dir = mkdtempSync(join(tmpdir(), "sipwarden-ingest-"));
  const store = openSqliteStore(dir, { recentEvents: recentCap });
  const bans = { decide() {} } as unknown as BanManager;
  const ingest = new Ingest(new DetectionEngine([]), bans, store, "UTC", [], silentLogger(), {}, recentCap);
  const record = (i: number): RawRecord => ({
    text: pjsipFailure(`192.0.2.${1 + (i % 250)}`, i),
    source: "file:/x",
    format: "asterisk",
    received: Date.now(),
    position: `p${i}`,
  });
  return {
    store,
    ingest,
    record,
    done: () => {
      ingest.flush(true);
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("ingest", () => {
  it("counts marker records as the lines they stand for and commits their position", () => {
    const { store, ingest, record, done } = setup(100);
    ingest.handle(record(0));
    ingest.handle({
      text: "",
      skipped: 41,
      source: "file:/x",
      format: "asterisk",
      received: Date.now(),
      position: "p42",
    });
    ingest.handle({ text: "", skipped: 2, source: "file:/x", format: "asterisk", received: Date.now() });
    ingest.flush();
    assert.equal(ingest.totals.records, 44);
    assert.equal(ingest.totals.events, 1);
    assert.equal(store.getOffset("file:/x"), "p42");
    done();
  });

  it("in a backlog commits positions at once but writes the newest events only once it is quiet", () => {
    const { store, ingest, record, done } = setup(500);
    // The first backlog flush writes (at most one write per 10 s in a backlog), the next waits.
    for (let i = 0; i < 1500; i++) ingest.handle(record(i));
    ingest.flush();
    const before = store.recentEvents(1000).map((e) => e.id);
    for (let i = 1500; i < 3000; i++) ingest.handle(record(i));
    ingest.flush();
    assert.equal(store.getOffset("file:/x"), "p2999", "positions are not held back");
    assert.deepEqual(
      store.recentEvents(1000).map((e) => e.id),
      before,
      "events wait while the backlog lasts",
    );
    for (let i = 3000; i < 3010; i++) ingest.handle(record(i));
    ingest.flush();
    const evs = store.recentEvents(1000);
    assert.equal(evs.length, 500, "the ring keeps the newest recentEvents");
    const ids = evs.map((e) => Number(/callid: t(\d+)-/.exec(e.line)?.[1])).sort((a, b) => a - b);
    assert.deepEqual(
      ids,
      Array.from({ length: 500 }, (_, k) => 2510 + k),
    );
    done();
  });

  it("a final flush writes held-back events", () => {
    const { store, ingest, record, done } = setup(50);
    for (let i = 0; i < 2000; i++) ingest.handle(record(i));
    ingest.flush(true);
    assert.equal(store.recentEvents(100).length, 50);
    done();
  });
});
