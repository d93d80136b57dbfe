/**
 * Every error sipwarden raises on purpose is a SipwardenError with a stable code.
 * Codes are part of the public interface (tests, logs, the CLI's exit status).
 */

export const ERROR_CODES = {
  CONFIG_INVALID: "config is invalid",
  CONFIG_READ: "config file cannot be read",
  RULE_INVALID: "rule is invalid",
  PATTERN_INVALID: "custom pattern is invalid",
  ADDRESS_INVALID: "address is invalid",
  ADDRESS_REFUSED: "address may not be banned",
  INPUT_READ: "input cannot be read",
  USAGE: "bad command-line usage",
  ENFORCER_FAILED: "firewall command failed",
  ENFORCER_UNAVAILABLE: "firewall backend unavailable",
  STORE_FAILED: "state store failed",
  SOURCE_FAILED: "source failed",
  AMI_AUTH: "AMI authentication failed",
  AMI_CONNECT: "AMI connection failed",
  AMI_PROTOCOL: "AMI protocol error",
  API_UNREACHABLE: "daemon control socket unreachable",
  API_ERROR: "daemon returned an error",
  NOTIFY_FAILED: "notification failed",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetails {
  /** Config/rule path such as `rules[2].window`. */
  path?: string;
  /** File the problem is in. */
  file?: string;
  /** 1-based line number in that file. */
  line?: number;
  cause?: unknown;
}

export class SipwardenError extends Error {
  readonly code: ErrorCode;
  readonly path?: string;
  readonly file?: string;
  readonly line?: number;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "SipwardenError";
    this.code = code;
    if (details.path !== undefined) this.path = details.path;
    if (details.file !== undefined) this.file = details.file;
    if (details.line !== undefined) this.line = details.line;
  }

  /** `file:line: path: message`, leaving out the parts that are unknown. */
  describe(): string {
    const where = [this.file && (this.line ? `${this.file}:${this.line}` : this.file), this.path]
      .filter(Boolean)
      .join(": ");
    return where ? `${where}: ${this.message}` : this.message;
  }
}

export function isSipwardenError(e: unknown, code?: ErrorCode): e is SipwardenError {
  return e instanceof SipwardenError && (code === undefined || e.code === code);
}

/** Exit codes from sysexits.h, so that systemd and scripts can tell failures apart. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  CONFIG: 78,
} as const;
