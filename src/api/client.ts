/**
 * A small client for the control API, over the Unix socket (default) or http://host:port.
 */
import { request } from "node:http";
import { SipwardenError } from "../core/errors.js";

export interface ClientOptions {
  socket?: string;
  url?: string;
  token?: string;
  timeoutMs?: number;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export function apiRequest<T = unknown>(
  method: string,
  path: string,
  body: unknown,
  opts: ClientOptions,
): Promise<ApiResponse<T>> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {};
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const target = opts.url ? new URL(path, opts.url) : null;
    const req = request(
      target
        ? { method, hostname: target.hostname, port: target.port, path: target.pathname + target.search, headers }
        : { method, socketPath: opts.socket, path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error("timed out")));
    req.on("error", (cause: NodeJS.ErrnoException) => {
      const where = opts.url ?? opts.socket ?? "?";
      const hint =
        cause.code === "ENOENT" || cause.code === "ECONNREFUSED"
          ? " (is the daemon running? start it with `sipwarden run`, or pass --socket)"
          : cause.code === "EACCES"
            ? " (permission denied: run as root or as a member of the socket's group)"
            : "";
      reject(
        new SipwardenError(
          "API_UNREACHABLE",
          `cannot reach the daemon at ${where}: ${cause.code ?? cause.message}${hint}`,
          { cause },
        ),
      );
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Like apiRequest, but a non-2xx answer becomes an API_ERROR with the daemon's message. */
export async function apiCall<T = unknown>(
  method: string,
  path: string,
  body: unknown,
  opts: ClientOptions,
): Promise<T> {
  const r = await apiRequest<T>(method, path, body, opts);
  if (r.status < 200 || r.status >= 300) {
    const msg = (r.body as { error?: string } | null)?.error ?? `HTTP ${r.status}`;
    throw new SipwardenError("API_ERROR", msg);
  }
  return r.body;
}

/** Follows the SSE stream, calling `onEvent` for each event until the signal aborts. */
export function followEvents(opts: ClientOptions, onEvent: (e: unknown) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const target = opts.url ? new URL("/v1/events/stream", opts.url) : null;
    const req = request(
      target
        ? { hostname: target.hostname, port: target.port, path: target.pathname, headers }
        : { socketPath: opts.socket, path: "/v1/events/stream", headers },
      (res) => {
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          buf += d;
          let i = buf.indexOf("\n\n");
          while (i >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            for (const line of block.split("\n")) if (line.startsWith("data: ")) onEvent(JSON.parse(line.slice(6)));
            i = buf.indexOf("\n\n");
          }
        });
        res.on("end", () => resolve());
      },
    );
    signal?.addEventListener("abort", () => {
      req.destroy();
      resolve();
    });
    req.on("error", (cause) => {
      if (signal?.aborted) return resolve();
      reject(
        new SipwardenError(
          "API_UNREACHABLE",
          `cannot reach the daemon: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`,
          { cause },
        ),
      );
    });
    req.end();
  });
}
