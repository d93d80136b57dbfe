import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isSipwardenError } from "../../src/core/errors.js";
import type { EventRecord } from "../../src/core/events.js";
import { openSqliteStore, storePath } from "../../src/store/sqlite.js";
import { sqlite } from "../../src/store/sqlite-driver.js";
import { ban, DAY, fresh, HOUR, T0 } from "./helpers.js";

const Database = sqlite();

function event(i: number): EventRecord {
  return {
    time: new Date(T0 + i * 1000).toISOString(),
    server: "asterisk",
    ip: `198.51.100.${i % 250}`,
    port: 5060,
    transport: "udp",
    kind: "auth_failed",
    service: "PJSIP",
    account: `10${i}`,
    userAgent: "friendly-scanner",
    pattern: "asterisk.pjsip.request_failed",
    line: `line ${i}`,
  };
}

describe("bans", () => {
  test("add, get, list, remove", () => {
    const { store } = fresh();
    const r = store.addBan(ban("198.51.100.7", { detail: "pattern x" }));
    assert.equal(r.created, true);
    assert.deepEqual(r.ban, {
      target: "198.51.100.7",
      rule: "sip-auth-bruteforce",
      reason: "5 failed auths in 1m",
      source: "rule",
      since: T0,
      expiresAt: T0 + HOUR,
      count: 5,
      detail: "pattern x",
    });
    assert.deepEqual(store.getBan("198.51.100.7"), r.ban);
    store.addBan(ban("2001:DB8::1", { since: T0 + 1 }));
    assert.deepEqual(
      store.activeBans(T0).map((b) => b.target),
      ["198.51.100.7", "2001:db8::1"],
    );
    assert.equal(store.getBan("2001:db8:0:0::1")?.target, "2001:db8::1", "targets are normalised");
    assert.equal(store.removeBan("198.51.100.7", { by: "cli", reason: "false positive", at: T0 + 10 }), true);
    assert.equal(store.removeBan("198.51.100.7", { by: "cli" }), false);
    assert.equal(store.getBan("198.51.100.7"), undefined);
    const log = store.banLog({ target: "198.51.100.7" });
    assert.equal(log.length, 1);
    assert.equal(log[0]!.endedBy, "cli");
    assert.equal(log[0]!.endReason, "false positive");
    assert.equal(log[0]!.endedAt, T0 + 10);
    store.close();
  });

  test("a CIDR target is stored in its network form; garbage is refused", () => {
    const { store } = fresh();
    assert.equal(store.addBan(ban("2001:db8:1:2:3::9/64")).ban.target, "2001:db8:1:2::/64");
    assert.throws(
      () => store.addBan(ban("pbx.example.com")),
      (e) => isSipwardenError(e, "ADDRESS_INVALID"),
    );
    assert.throws(
      () => store.addBan(ban("198.51.100.1; rm -rf /")),
      (e) => isSipwardenError(e, "ADDRESS_INVALID"),
    );
    assert.equal(store.getBan("not an ip"), undefined);
    assert.equal(store.activeBans(T0).length, 1);
    store.close();
  });

  test("a re-ban extends: later expiry wins, counts add, newest rule and reason", () => {
    const { store } = fresh();
    store.addBan(ban("198.51.100.7"));
    const r = store.addBan(
      ban("198.51.100.7", { since: T0 + 60_000, expiresAt: T0 + 4 * HOUR, count: 7, rule: "scanner", reason: "UA" }),
    );
    assert.equal(r.created, false);
    assert.equal(r.ban.since, T0, "the ban keeps its start");
    assert.equal(r.ban.expiresAt, T0 + 4 * HOUR);
    assert.equal(r.ban.count, 12);
    assert.equal(r.ban.rule, "scanner");
    // A shorter re-ban never shortens.
    assert.equal(store.addBan(ban("198.51.100.7", { since: T0 + 120_000 })).ban.expiresAt, T0 + 4 * HOUR);
    // A permanent re-ban makes it permanent, and a later timed one does not undo that.
    assert.equal(store.addBan(ban("198.51.100.7", { expiresAt: null })).ban.expiresAt, null);
    assert.equal(store.addBan(ban("198.51.100.7")).ban.expiresAt, null);
    assert.equal(store.activeBans(T0 + 1000 * DAY).length, 1);
    store.close();
  });

  test("a manual ban keeps its reason when a rule hits the same target", () => {
    const { store } = fresh();
    store.addBan(
      ban("198.51.100.8", { source: "manual", rule: "manual", reason: "abuse report #12", expiresAt: null, count: 0 }),
    );
    const r = store.addBan(ban("198.51.100.8", { count: 3 }));
    assert.equal(r.ban.source, "manual");
    assert.equal(r.ban.reason, "abuse report #12");
    assert.equal(r.ban.count, 3);
    assert.equal(r.ban.expiresAt, null);
    store.close();
  });

  test("expiry moves bans to the log; a re-ban after expiry starts a new ban", () => {
    const { store } = fresh();
    store.addBan(ban("198.51.100.1", { expiresAt: T0 + HOUR }));
    store.addBan(ban("198.51.100.2", { expiresAt: T0 + 2 * HOUR }));
    store.addBan(ban("198.51.100.3", { expiresAt: null }));
    assert.equal(store.activeBans(T0 + HOUR).length, 2, "a ban is over at its expiry instant");
    assert.equal(store.getBan("198.51.100.1", T0 + HOUR), undefined);
    assert.ok(store.getBan("198.51.100.1"), "still stored until the sweep");
    const gone = store.expireBans(T0 + HOUR);
    assert.deepEqual(
      gone.map((b) => b.target),
      ["198.51.100.1"],
    );
    assert.deepEqual(store.expireBans(T0 + HOUR), [], "a second sweep finds nothing");
    assert.equal(store.banLog()[0]?.endedBy, "expiry");
    assert.equal(store.banLog()[0]?.endedAt, T0 + HOUR);

    // 198.51.100.2 expired (not swept yet) when banned again: that is a fresh ban, not an extension.
    const r = store.addBan(ban("198.51.100.2", { since: T0 + 3 * HOUR, expiresAt: T0 + 4 * HOUR, count: 1 }));
    assert.equal(r.created, true);
    assert.equal(r.ban.since, T0 + 3 * HOUR);
    assert.equal(r.ban.count, 1);
    assert.equal(store.banLog({ target: "198.51.100.2" }).length, 1);
    store.close();
  });

  test("clearBans lifts everything and logs it", () => {
    const { store } = fresh();
    for (let i = 1; i <= 5; i++) store.addBan(ban(`198.51.100.${i}`));
    assert.equal(store.clearBans({ by: "api", at: T0 + 5 }), 5);
    assert.deepEqual(store.activeBans(T0), []);
    assert.equal(store.banLog({ limit: 10 }).length, 5);
    assert.ok(store.banLog().every((b) => b.endedBy === "api"));
    store.close();
  });

  test("manual bans and unbans survive a reopen; an unbanned target is not re-applied", () => {
    const { dir, store } = fresh();
    store.addBan(ban("198.51.100.20"));
    store.addBan(ban("198.51.100.21", { source: "manual", rule: "manual", reason: "by hand", expiresAt: null }));
    store.addBan(ban("198.51.100.22"));
    store.removeBan("198.51.100.22", { by: "cli" });
    store.close();

    const again = openSqliteStore(dir);
    const active = again.activeBans(T0 + 1);
    assert.deepEqual(
      active.map((b) => [b.target, b.source]),
      [
        ["198.51.100.20", "rule"],
        ["198.51.100.21", "manual"],
      ],
    );
    assert.equal(again.banLog({ target: "198.51.100.22" })[0]?.endedBy, "cli");
    again.close();
  });
});

describe("history", () => {
  test("offences count within the decay window and old ones are pruned", () => {
    const { store } = fresh({ offenceDecayMs: 30 * DAY });
    assert.equal(store.offences("198.51.100.9", T0), 0);
    store.record("198.51.100.9", T0 - 40 * DAY);
    store.record("198.51.100.9", T0 - 20 * DAY);
    store.record("198.51.100.9", T0 - DAY);
    store.record("198.51.100.10", T0 - DAY);
    assert.equal(store.offences("198.51.100.9", T0), 2, "the 40-day-old offence has decayed");
    assert.equal(store.offences("198.51.100.9", T0 - 25 * DAY), 2, "as of an earlier replay time");
    assert.equal(store.offences("198.51.100.9", T0 + 15 * DAY), 1);
    assert.equal(store.offences("198.51.100.10", T0), 1);
    assert.equal(store.offences("2001:DB8::5", T0), 0);
    store.record("2001:db8::5", T0);
    assert.equal(store.offences("2001:DB8:0::5", T0), 1, "targets are normalised");
    store.close();
  });

  test("the default window end is the store's clock, and history survives a reopen", () => {
    let now = T0;
    const { dir, store } = fresh({ offenceDecayMs: 7 * DAY, now: () => now });
    store.record("198.51.100.11", T0 - 2 * DAY);
    store.record("198.51.100.11", T0);
    assert.equal(store.offences("198.51.100.11"), 2);
    now = T0 + 6 * DAY;
    assert.equal(store.offences("198.51.100.11"), 1);
    store.close();
    const again = openSqliteStore(dir, { offenceDecayMs: 7 * DAY, now: () => T0 });
    assert.equal(again.offences("198.51.100.11"), 2);
    again.close();
  });
});

describe("offsets and batches", () => {
  test("offsets are opaque strings that persist", () => {
    const { dir, store } = fresh();
    assert.equal(store.getOffset("file:/var/log/asterisk/full"), undefined);
    const pos = JSON.stringify({ ino: 1234, pos: 56789 });
    store.setOffset("file:/var/log/asterisk/full", pos);
    store.setOffset("journald:kamailio", "s=abc;i=1");
    store.setOffset("journald:kamailio", "s=abc;i=2");
    store.close();
    const again = openSqliteStore(dir);
    assert.equal(again.getOffset("file:/var/log/asterisk/full"), pos);
    assert.equal(again.getOffset("journald:kamailio"), "s=abc;i=2");
    again.close();
  });

  test("commitBatch commits offsets and bans together, or nothing when it throws", () => {
    const { store } = fresh();
    const out = store.commitBatch(() => {
      store.setOffset("file:a", "100");
      store.addBan(ban("198.51.100.30"));
      return "done";
    });
    assert.equal(out, "done");
    const boom = new Error("parser blew up");
    assert.throws(
      () =>
        store.commitBatch(() => {
          store.setOffset("file:a", "200");
          store.addBan(ban("198.51.100.31"));
          store.commitBatch(() => store.setMeta("nested", "yes"));
          throw boom;
        }),
      (e) => e === boom,
    );
    assert.equal(store.getOffset("file:a"), "100");
    assert.equal(store.getBan("198.51.100.31"), undefined);
    assert.equal(store.getMeta("nested"), undefined);
    assert.ok(store.getBan("198.51.100.30"));
    store.close();
  });
});

describe("recent events", () => {
  test("the ring keeps about the newest N and pages by id", () => {
    const { dir, store } = fresh({ recentEvents: 100 });
    let i = 0;
    for (let batch = 0; batch < 50; batch++) {
      const records: EventRecord[] = [];
      for (let k = 0; k < 20; k++) records.push(event(i++));
      store.addEvents(records);
    }
    const db = new Database(storePath(dir), { readonly: true });
    const rows = (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    db.close();
    assert.ok(rows >= 100 && rows <= 100 + 16 + 20, `ring holds ${rows} rows`);

    const newest = store.recentEvents(10);
    assert.equal(newest.length, 10);
    assert.deepEqual(
      newest.map((e) => e.line),
      Array.from({ length: 10 }, (_, k) => `line ${990 + k}`),
      "the newest ten, oldest first",
    );
    assert.deepEqual(newest[9], { ...event(999), id: newest[9]!.id });
    const ids = newest.map((e) => e.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    const page = store.recentEvents(3, ids[4]);
    assert.deepEqual(
      page.map((e) => e.id),
      ids.slice(5, 8),
    );
    assert.deepEqual(store.recentEvents(5, ids[9]), []);
    store.close();
  });

  test("ids keep increasing across reopen and trimming", () => {
    const { dir, store } = fresh({ recentEvents: 20 });
    store.addEvents(Array.from({ length: 60 }, (_, k) => event(k)));
    const last = store.recentEvents(1)[0]!.id;
    store.close();
    const again = openSqliteStore(dir, { recentEvents: 20 });
    again.addEvents([event(60)]);
    const next = again.recentEvents(5, last);
    assert.equal(next.length, 1);
    assert.ok(next[0]!.id > last);
    again.close();
  });

  test("recentEvents 0 keeps none", () => {
    const { store } = fresh({ recentEvents: 0 });
    store.addEvents([event(1), event(2)]);
    assert.deepEqual(store.recentEvents(10), []);
    store.close();
  });
});

describe("meta", () => {
  test("get and set", () => {
    const { store } = fresh();
    assert.equal(store.getMeta("lastStart"), undefined);
    store.setMeta("lastStart", "2024-05-01T12:00:00Z");
    store.setMeta("lastStart", "2024-05-02T12:00:00Z");
    assert.equal(store.getMeta("lastStart"), "2024-05-02T12:00:00Z");
    store.close();
  });
});
