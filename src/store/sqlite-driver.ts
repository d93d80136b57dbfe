/**
 * The better-sqlite3 build that works on this Node.js release.
 *
 * - better-sqlite3 13 is built on Node-API (node-addon-api) and ships its own prebuilt binaries.
 *   It needs Node.js 22 or later; on Node.js 20 it loads, then segfaults when it opens a database.
 * - better-sqlite3 12 uses Node's raw ObjectWrap. Built against Node.js 24.19 or later headers,
 *   its Statement destructor aborts the process (`Assertion failed: (env) != nullptr` in
 *   node::RemoveEnvironmentCleanupHook) when the garbage collector frees a statement, in the
 *   middle of normal work (nodejs/node#65446, WiseLibs/better-sqlite3#1515). It is installed
 *   as the optional dependency `better-sqlite3-node20` and used on Node.js 20 only.
 *
 * Both have the same JavaScript API, so the store does not care which one it gets.
 */
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";
import { SipwardenError } from "../core/errors.js";

/** The Node.js major release from which better-sqlite3 13 is used. */
export const NAPI_DRIVER_FROM = 22;

/** The package that serves Node.js release `major`. */
export function driverPackage(major: number): "better-sqlite3" | "better-sqlite3-node20" {
  return major >= NAPI_DRIVER_FROM ? "better-sqlite3" : "better-sqlite3-node20";
}

const nodeRequire = createRequire(import.meta.url);
let driver: typeof BetterSqlite3 | undefined;

/**
 * Loads the driver package for Node.js release `major` with `load` (a `require`); a driver that
 * cannot load is a STORE_FAILED error that names the package, the reason and the remedy.
 */
export function loadDriver(major: number, load: (id: string) => unknown = nodeRequire): typeof BetterSqlite3 {
  const pkg = driverPackage(major);
  try {
    return load(pkg) as typeof BetterSqlite3;
  } catch (cause) {
    throw new SipwardenError(
      "STORE_FAILED",
      `the SQLite driver for Node.js ${major} (${pkg}) cannot be loaded: ${(cause as Error).message}. ` +
        "Run `npm ci` again under this Node.js, which installs the driver for it" +
        (major < NAPI_DRIVER_FROM ? `, or upgrade to Node.js ${NAPI_DRIVER_FROM} or later` : ""),
      { cause },
    );
  }
}

/**
 * better-sqlite3's Database class (constructor and `SqliteError`; the types are those of
 * @types/better-sqlite3) for this Node.js, loaded on first use so that commands that never open
 * the store do not load a native module.
 */
export function sqlite(): typeof BetterSqlite3 {
  driver ??= loadDriver(Number.parseInt(process.versions.node, 10));
  return driver;
}

export type { BetterSqlite3 as Sqlite };
