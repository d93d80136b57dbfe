import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NODE_RELEASES, runtimeWarning } from "../../src/core/runtime.js";

const at = (day: string) => Date.parse(`${day}T12:00:00Z`);

describe("runtimeWarning", () => {
  it("says nothing for a release line that is still supported", () => {
    assert.equal(runtimeWarning("20.20.2", at("2026-04-30")), null);
    assert.equal(runtimeWarning("22.23.3", at("2026-11-22")), null);
    assert.equal(runtimeWarning("24.21.0", at("2026-11-22")), null);
  });
  it("warns from the day after the end of life, naming the LTS lines to move to", () => {
    assert.equal(
      runtimeWarning("20.20.2", at("2026-05-01")),
      "Node.js 20.20.2 reached its end of life on 2026-04-30 and gets no security fixes; upgrade to Node.js 22 or 24 LTS",
    );
    assert.equal(
      runtimeWarning("25.1.0", at("2026-11-22")),
      "Node.js 25.1.0 reached its end of life on 2026-06-01 and gets no security fixes; upgrade to Node.js 22, 24 or 26 LTS",
    );
    assert.match(runtimeWarning("22.0.0", at("2027-05-02")) ?? "", /on 2027-04-30 .*upgrade to Node\.js 24 or 26 LTS$/);
  });
  it("says nothing for a release line it does not know", () => {
    assert.equal(runtimeWarning("28.0.0", at("2032-01-01")), null);
    assert.equal(runtimeWarning("not a version", at("2026-11-22")), null);
  });
  it("warns past every known end of life without recommending a line", () => {
    assert.equal(
      runtimeWarning("26.0.0", at("2030-01-01")),
      "Node.js 26.0.0 reached its end of life on 2029-04-30 and gets no security fixes",
    );
  });
  it("recommends only lines already in long-term support", () => {
    // Node.js 26 entered LTS on 2026-10-28: not named in May, named in November.
    assert.match(runtimeWarning("25.1.0", at("2026-06-02")) ?? "", /upgrade to Node\.js 22 or 24 LTS$/);
    assert.match(runtimeWarning("25.1.0", at("2026-10-28")) ?? "", /upgrade to Node\.js 22, 24 or 26 LTS$/);
  });
  it("follows the schedule: even lines are LTS in October and end 30 months after their April release, odd lines end on 1 June", () => {
    for (const [major, r] of Object.entries(NODE_RELEASES)) {
      const m = Number(major);
      if (m % 2 === 0) {
        const year = 2023 + (m - 20) / 2;
        assert.equal(r.endOfLife, `${year + 3}-04-30`, `Node.js ${m}`);
        assert.match(r.lts ?? "", new RegExp(`^${year}-10-`), `Node.js ${m}`);
      } else {
        assert.equal(r.endOfLife, `${2024 + (m - 21) / 2}-06-01`, `Node.js ${m}`);
        assert.equal(r.lts, undefined);
      }
    }
  });
});
