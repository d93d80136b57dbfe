import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  bansHeadline,
  banTable,
  clean,
  mailSubject,
  mailText,
  rulesSummary,
  slackEscape,
  stamp,
} from "../../src/notify/format.js";
import { BanTally } from "../../src/notify/tally.js";
import type { BanNotice } from "../../src/notify/types.js";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function notice(target: string, over: Partial<BanNotice> = {}): BanNotice {
  return {
    target,
    rule: "SIP auth brute force",
    reason: "5 failed auths",
    count: 5,
    duration: 3_600_000,
    first: T0,
    last: T0 + 1000,
    ...over,
  };
}

describe("format", () => {
  test("the subject of the issue's example", () => {
    const t = new BanTally(1000);
    for (let i = 0; i < 30; i++) t.addBan(notice(`198.51.100.${i}`));
    for (let i = 0; i < 7; i++) t.addBan(notice(`2001:db8::${i}`, { rule: "scanner" }));
    assert.equal(
      mailSubject({ host: "pbx1", lifecycle: [], batch: t }),
      "[sipwarden] pbx1: 37 addresses banned (SIP auth brute force ×30, scanner ×7)",
    );
  });

  test("one address is named; many rules are summarised", () => {
    const one = new BanTally(10);
    one.addBan(notice("198.51.100.7"));
    assert.equal(bansHeadline(one), "198.51.100.7 banned (SIP auth brute force)");
    assert.equal(
      rulesSummary([
        ["a", 10],
        ["b", 5],
        ["c", 2],
        ["d", 1],
        ["e", 1],
      ]),
      "a ×10, b ×5, c ×2, other rules ×2",
    );
    assert.equal(rulesSummary([["a", 12_345]]), "a ×12,345");
  });

  test("lifecycle and bans share a subject", () => {
    const t = new BanTally(10);
    t.addBan(notice("198.51.100.7"));
    t.addBan(notice("198.51.100.8"));
    const lifecycle = [{ phase: "stop" as const, info: {}, at: T0 }];
    assert.equal(
      mailSubject({ host: "pbx1", lifecycle, batch: t }),
      "[sipwarden] pbx1: stopped; 2 addresses banned (SIP auth brute force ×2)",
    );
    assert.equal(mailSubject({ host: "pbx1", lifecycle, batch: new BanTally(10) }), "[sipwarden] pbx1: stopped");
  });

  test("the table lists the top N by attempts and counts the rest exactly", () => {
    const t = new BanTally(1000);
    for (let i = 0; i < 120; i++) t.addBan(notice(`198.51.100.${i}`, { count: i }));
    const lines = banTable(t, 5);
    assert.equal(lines.length, 1 + 5 + 1);
    assert.match(
      lines[1]!,
      /^ {2}198\.51\.100\.119 +SIP auth brute force +119 1h +2024-05-01 12:00:00Z → 2024-05-01 12:00:01Z {2}5 failed auths$/,
    );
    assert.equal(lines[6], "  … and 115 more addresses (not listed).");
    const text = mailText({ host: "pbx1", lifecycle: [], batch: t }, 5);
    assert.match(
      text,
      /^120 addresses banned on pbx1\n\(attempts from 2024-05-01 12:00:00Z to 2024-05-01 12:00:01Z\)\./,
    );
    assert.match(text, /By rule:\n {2}SIP auth brute force +120\n/);
    assert.match(text, /\n-- \nsipwarden on pbx1$/);
  });

  test("attacker-influenced text cannot break lines or headers, or ping a Slack channel", () => {
    assert.equal(clean("evil\r\nBcc: victim@example.net"), "evil Bcc: victim@example.net");
    assert.equal(clean("x".repeat(300), 10), "xxxxxxxxx…");
    const t = new BanTally(10);
    t.addBan(notice("198.51.100.7", { rule: "scanner\r\nX-Injected: 1" }));
    const subject = mailSubject({ host: "pbx1", lifecycle: [], batch: t });
    assert.ok(!/[\r\n]/.test(subject));
    assert.equal(slackEscape("<!channel> & <https://evil|click>"), "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;");
  });

  test("stamp", () => {
    assert.equal(stamp(T0 + 5123), "2024-05-01 12:00:05Z");
    assert.equal(stamp(Number.POSITIVE_INFINITY), "-");
  });
});
