/**
 * `GET /metrics` for the control API's TCP listener (via `buildApi`'s `extend`). The listener's
 * bearer token, when one is configured, guards it like every other route: give Prometheus the
 * token with `authorization: { credentials: ... }` in the scrape config.
 */
import type { FastifyInstance } from "fastify";
import type { PrometheusMetrics } from "./prometheus.js";

export function metricsRoute(prom: PrometheusMetrics): (app: FastifyInstance) => void {
  return (app) => {
    app.get("/metrics", async (_req, reply) => {
      const body = await prom.render();
      return reply.header("content-type", prom.contentType).send(body);
    });
  };
}
