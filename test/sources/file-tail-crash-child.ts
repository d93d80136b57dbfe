/**
 * Child process for the SIGKILL test: tails one file and "processes" each record by storing
 * its text in SQLite, in the SAME transaction as the record's acknowledged offset — exactly
 * the contract the daemon follows. Usage: file-tail-crash-child.ts <db> <log>
 */

import { FileTail } from "../../src/sources/file-tail.js";
import {
  acknowledge,
  decodePosition,
  encodePosition,
  type OffsetStore,
  type Position,
} from "../../src/sources/offsets.js";
import type { RawRecord } from "../../src/sources/types.js";
import { sqlite } from "../../src/store/sqlite-driver.js";

const Database = sqlite();

const [dbPath, logPath] = process.argv.slice(2);
if (!dbPath || !logPath) throw new Error("usage: file-tail-crash-child.ts <db> <log>");

const db = new Database(dbPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.exec(`CREATE TABLE IF NOT EXISTS offsets (key TEXT PRIMARY KEY, pos TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS processed (seq INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, pid INTEGER NOT NULL)`);
const getPos = db.prepare<[string], { pos: string }>("SELECT pos FROM offsets WHERE key = ?");
const putPos = db.prepare(
  "INSERT INTO offsets (key, pos) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET pos = excluded.pos",
);
const addLine = db.prepare("INSERT INTO processed (line, pid) VALUES (?, ?)");

const store: OffsetStore = {
  get(key: string): Position | undefined {
    const row = getPos.get(key);
    return row ? (decodePosition(row.pos) ?? undefined) : undefined;
  },
  set(key: string, pos: Position): void {
    putPos.run(key, encodePosition(pos));
  },
};

const processRecord = db.transaction((r: RawRecord) => {
  addLine.run(r.text, process.pid);
  acknowledge(store, r);
});

const controller = new AbortController();
process.on("SIGTERM", () => controller.abort());
// Tell the parent that SIGTERM is now handled (before this, SIGTERM would just kill us).
process.stdout.write("ready\n");
const say = (level: string) => (obj: object, msg?: string) =>
  process.stderr.write(`[child ${process.pid}] ${level} ${msg ?? ""} ${JSON.stringify(obj)}\n`);
const logger = process.env.SIPWARDEN_DEBUG
  ? { debug: say("debug"), info: say("info"), warn: say("warn"), error: say("error") }
  : undefined;
const tail = new FileTail({ paths: [logPath], fromStart: true, offsets: store, pollMs: 50, ...(logger && { logger }) });
await tail.run(processRecord, controller.signal);
db.close();
