/**
 * `--ami ami://user:secret@host:5038` on the command line, and the AMI secret file.
 *
 * Accepted query parameters: `secretFile` (read the secret from a file instead of the URL, so
 * it does not show in `ps`), `auth` (`md5`, the default, or `plain`), `name`, `ping` and
 * `silence` (durations such as `20s`, `10m`). Anything else is an error that names it.
 */
import { readFileSync } from "node:fs";
import { parseDuration } from "../config/duration.js";
import type { AmiSourceConfig } from "../config/schema.js";
import { normalizeIp } from "../core/address.js";
import { SipwardenError } from "../core/errors.js";

const DEFAULT_PORT = 5038;
const DEFAULT_PING = 20_000;
const DEFAULT_SILENCE = 600_000;
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
/** A manager.conf section name as it can travel in a `Username:` header: no space or control character. */
const USERNAME = /^[^\s\x00-\x1f\x7f[\]]{1,80}$/;
const QUERY_KEYS = new Set(["secretFile", "auth", "name", "ping", "silence"]);

function usage(what: string, cause?: unknown): SipwardenError {
  return new SipwardenError(
    "USAGE",
    `--ami: ${what} (expected ami://user:secret@host:5038 or ami://user@host:5038?secretFile=/path)`,
    cause === undefined ? {} : { cause },
  );
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch (cause) {
    throw usage(`the ${what} has a malformed %-escape`, cause);
  }
}

/** Checks an AMI host: an IP literal (IPv6 with or without brackets) or a DNS name. */
export function validateAmiHost(raw: string): string {
  const ip = normalizeIp(raw);
  if (ip) return ip;
  if (HOSTNAME.test(raw) && !/^[\d.]+$/.test(raw)) return raw.toLowerCase();
  throw new SipwardenError(
    "CONFIG_INVALID",
    `AMI host ${JSON.stringify(raw)} is neither an IP address nor a host name`,
  );
}

/**
 * Parses `ami://user[:secret]@host[:port][?secretFile=…&auth=md5|plain&name=…&ping=20s&silence=10m]`
 * into an AMI source config. Exactly one of the secret and `secretFile` must be given.
 * Throws `SipwardenError("USAGE")` naming the problem; the message never contains the secret.
 */
export function parseAmiUrl(text: string): AmiSourceConfig {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // No cause: Node's URL error keeps the input, secret included.
    throw usage("not a URL");
  }
  if (url.protocol !== "ami:") throw usage(`the scheme must be ami://, not ${url.protocol}//`);
  if (url.hash) throw usage("a #fragment is not allowed");
  if (url.pathname !== "" && url.pathname !== "/") throw usage("a path is not allowed after host:port");
  if (!url.hostname) throw usage("the host is missing");
  if (!url.username) throw usage("the manager user name is missing (ami://user:secret@host)");

  const username = decode(url.username, "user name");
  if (!USERNAME.test(username))
    throw usage(`the user name ${JSON.stringify(username)} has a space, bracket or control character`);
  const secret = url.password ? decode(url.password, "secret") : undefined;
  if (secret !== undefined && /[\r\n]/.test(secret)) throw usage("the secret must not contain a line break");

  let host: string;
  try {
    host = validateAmiHost(url.hostname.replace(/^\[(.*)\]$/, "$1"));
  } catch (cause) {
    throw usage(`the host ${JSON.stringify(url.hostname)} is neither an IP address nor a host name`, cause);
  }
  const port = url.port === "" ? DEFAULT_PORT : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw usage(`port ${url.port} is out of range`);

  let secretFile: string | undefined;
  let auth: "md5" | "plain" = "md5";
  let name: string | undefined;
  let pingInterval = DEFAULT_PING;
  let silenceWarning = DEFAULT_SILENCE;
  const seen = new Set<string>();
  for (const [k, v] of url.searchParams) {
    if (!QUERY_KEYS.has(k))
      throw usage(`unknown parameter ${JSON.stringify(k)} (known: ${[...QUERY_KEYS].join(", ")})`);
    if (seen.has(k)) throw usage(`parameter ${k} given twice`);
    seen.add(k);
    if (k === "secretFile") {
      if (!v.startsWith("/")) throw usage("secretFile must be an absolute path");
      secretFile = v;
    } else if (k === "auth") {
      if (v !== "md5" && v !== "plain") throw usage(`auth must be md5 or plain, not ${JSON.stringify(v)}`);
      auth = v;
    } else if (k === "name") {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(v)) throw usage("name must be 1-64 letters, digits, '_', '.' or '-'");
      name = v;
    } else {
      const ms = parseDuration(v);
      if (ms === null || ms <= 0) throw usage(`${k} must be a duration like "20s", not ${JSON.stringify(v)}`);
      if (k === "ping") pingInterval = ms;
      else silenceWarning = ms;
    }
  }
  if (secret !== undefined && secretFile !== undefined)
    throw usage("give the secret in the URL or in secretFile, not both");
  if (secret === undefined && secretFile === undefined)
    throw usage("the secret is missing: put it in the URL (user:secret@) or use ?secretFile=/path");

  return {
    ...(name !== undefined && { name }),
    host,
    port,
    username,
    ...(secret !== undefined && { secret }),
    ...(secretFile !== undefined && { secretFile }),
    auth,
    pingInterval,
    silenceWarning,
  };
}

/** The URL with its secret masked, for logs and `sipwarden status`. */
export function redactAmiUrl(text: string): string {
  return text.replace(/^(ami:\/\/[^:@/]*):[^@/]*@/i, "$1:***@");
}

/**
 * The secret to log in with: from the config, or read once from `secretFile` with trailing
 * line breaks removed (editors add one). Never logged.
 */
export function resolveAmiSecret(cfg: Pick<AmiSourceConfig, "secret" | "secretFile" | "username">): string {
  if (cfg.secret !== undefined) return cfg.secret;
  if (cfg.secretFile === undefined)
    throw new SipwardenError("CONFIG_INVALID", `AMI user '${cfg.username}': give secret or secretFile`);
  let text: string;
  try {
    text = readFileSync(cfg.secretFile, "utf8");
  } catch (cause) {
    throw new SipwardenError(
      "CONFIG_READ",
      `cannot read the AMI secret file for user '${cfg.username}': ${(cause as Error).message}`,
      { file: cfg.secretFile, cause },
    );
  }
  const secret = text.replace(/[\r\n]+$/, "");
  if (secret === "")
    throw new SipwardenError("CONFIG_INVALID", `the AMI secret file for user '${cfg.username}' is empty`, {
      file: cfg.secretFile,
    });
  if (/[\r\n]/.test(secret))
    throw new SipwardenError(
      "CONFIG_INVALID",
      `the AMI secret file for user '${cfg.username}' has more than one line; it must hold only the secret`,
      { file: cfg.secretFile },
    );
  return secret;
}
