/**
 * The local control API (Fastify). It listens on a Unix socket (file mode 0660, the only
 * access control there is the file's permissions) and optionally on TCP, where a bearer
 * token is required unless it binds to loopback without one configured.
 */
import { timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import { parseDuration } from "../config/duration.js";
import { normalizeCidr } from "../core/address.js";
import { isSipwardenError } from "../core/errors.js";
import type { Control } from "./types.js";

export interface ApiOptions {
  /** Require `Authorization: Bearer <token>` on every request (TCP listener). */
  token?: string;
  /** Extra routes, e.g. Prometheus `/metrics` on the TCP listener. */
  extend?: (app: FastifyInstance) => void;
}

function tokenOk(header: string | undefined, token: string): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildApi(control: Control, opts: ApiOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });

  if (opts.token) {
    const token = opts.token;
    app.addHook("onRequest", async (req, reply) => {
      if (!tokenOk(req.headers.authorization, token)) {
        await reply.code(401).header("www-authenticate", "Bearer").send({ error: "unauthorized" });
      }
    });
  }

  app.setErrorHandler((err, _req, reply) => {
    if (isSipwardenError(err)) {
      const status =
        err.code === "ADDRESS_INVALID" || err.code === "USAGE" ? 400 : err.code === "ADDRESS_REFUSED" ? 403 : 500;
      void reply.code(status).send({ error: err.message, code: err.code });
      return;
    }
    const e = err as { statusCode?: number; message?: string };
    void reply.code(e.statusCode && e.statusCode < 500 ? e.statusCode : 500).send({ error: e.message ?? String(err) });
  });

  app.get("/v1/status", async () => control.status());
  app.get("/v1/bans", async () => control.bans());

  app.post<{ Body: { target?: unknown; for?: unknown; reason?: unknown } }>("/v1/bans", async (req, reply) => {
    const body = req.body ?? {};
    if (typeof body.target !== "string" || !normalizeCidr(body.target))
      return reply.code(400).send({ error: `not an IP address or CIDR: ${JSON.stringify(body.target)}` });
    let durationMs: number | undefined;
    if (body.for !== undefined) {
      const d = typeof body.for === "string" ? parseDuration(body.for) : null;
      if (d === null)
        return reply.code(400).send({ error: `expected a duration like "1h", got ${JSON.stringify(body.for)}` });
      durationMs = d;
    }
    const reason = typeof body.reason === "string" ? body.reason.slice(0, 500) : undefined;
    const ban = await control.ban({
      target: body.target,
      ...(durationMs !== undefined ? { durationMs } : {}),
      ...(reason ? { reason } : {}),
    });
    return reply.code(201).send(ban);
  });

  app.delete<{ Params: { target: string } }>("/v1/bans/:target", async (req, reply) => {
    const t = decodeURIComponent(req.params.target);
    if (t !== "all" && !normalizeCidr(t))
      return reply.code(400).send({ error: `not an IP address or CIDR: ${JSON.stringify(t)}` });
    const removed = await control.unban(t, "api");
    if (removed === 0 && t !== "all") return reply.code(404).send({ error: `${t} is not banned`, removed });
    return { removed };
  });

  app.post("/v1/reload", async () => control.reload());

  app.get<{ Querystring: { limit?: string } }>("/v1/events", async (req) => {
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100) || 100, 1), 10_000);
    return control.recentEvents(limit);
  });

  // Server-sent events: one `data:` line of JSON per SecurityEvent, plus a comment heartbeat.
  app.get("/v1/events/stream", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    res.write(": sipwarden events\n\n");
    const unsubscribe = control.subscribe((e) => {
      res.write(`data: ${JSON.stringify(e)}\n\n`);
    });
    const beat = setInterval(() => res.write(": ping\n\n"), 15_000);
    beat.unref();
    req.raw.on("close", () => {
      clearInterval(beat);
      unsubscribe();
    });
  });

  opts.extend?.(app);
  return app;
}
