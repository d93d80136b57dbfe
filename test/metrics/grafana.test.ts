/**
 * The shipped Grafana dashboard: valid JSON, every query names only metrics that exist (ours
 * from the catalog, prom-client's from a real scrape), and every documented metric is shown.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { METRICS } from "../../src/metrics/catalog.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { ROOT } from "../helpers/paths.js";
import { parseExposition } from "./exposition.js";

interface Panel {
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, "packaging", "grafana-dashboard.json"), "utf8")) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};

function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:sipwarden|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!);
}

describe("Grafana dashboard", () => {
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it("queries only metrics that exist", async () => {
    const m = new Metrics({ prometheus: true });
    const exposed = parseExposition(await m.prometheus!.render());
    const families = new Set(exposed.types.keys());
    const exists = (name: string) =>
      families.has(name) || families.has(name.replace(/_(bucket|sum|count)$/, "")) || families.has(`${name}_total`);
    assert.ok(exprs.length > 20);
    for (const e of exprs) {
      const names = metricNames(e);
      assert.ok(names.length > 0, `no metric in ${e}`);
      for (const n of names) assert.ok(exists(n), `${n} in ${e}`);
      assert.match(e, /instance=~"\$instance"/, `instance filter in ${e}`);
    }
  });

  it("shows every documented metric", () => {
    const used = new Set(exprs.flatMap(metricNames).map((n) => n.replace(/_(bucket|sum|count)$/, "")));
    for (const d of Object.values(METRICS)) assert.ok(used.has(d.name), `${d.name} is on the dashboard`);
  });

  it("is a well-formed dashboard: unique ids, refIds, no overlapping panels", () => {
    assert.equal(dashboard.uid, "sipwarden-overview");
    assert.deepEqual(
      dashboard.templating.list.map((v) => v.name),
      ["datasource", "instance"],
    );
    const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
    assert.equal(new Set(ids).size, ids.length);
    for (const p of dashboard.panels) {
      const refs = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refs).size, refs.length, p.title);
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, p.title);
    }
    for (const [i, a] of dashboard.panels.entries())
      for (const b of dashboard.panels.slice(i + 1)) {
        const overlap =
          a.gridPos.x < b.gridPos.x + b.gridPos.w &&
          b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h &&
          b.gridPos.y < a.gridPos.y + a.gridPos.h;
        assert.ok(!overlap, `${a.title} overlaps ${b.title}`);
      }
  });
});
