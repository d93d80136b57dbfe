/**
 * File identity for resuming: device + inode, and a hash of the head of the file. The inode
 * tells rename-and-create apart; the head hash tells an in-place truncate-and-rewrite
 * (copytruncate) or a reused inode apart, where the inode alone would lie.
 */
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { type FileHandle, open, readdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type FilePosition, HEAD_BYTES } from "./offsets.js";

export interface Head {
  readonly len: number;
  readonly hash: string;
}

export function hashHead(buf: Buffer, len: number): string {
  return createHash("sha256").update(buf.subarray(0, len)).digest("hex").slice(0, 16);
}

/** Read up to `len` bytes from the start of the file. */
export async function readHead(fh: FileHandle, len: number, scratch?: Buffer): Promise<Buffer> {
  const buf = scratch && scratch.length >= len ? scratch : Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Whether the open file still starts with the bytes the head hash was taken over. */
export async function headMatches(fh: FileHandle, head: Head, scratch?: Buffer): Promise<boolean> {
  if (head.len === 0) return true;
  const buf = await readHead(fh, head.len, scratch);
  return buf.length === head.len && hashHead(buf, head.len) === head.hash;
}

export async function statOrNull(path: string): Promise<BigIntStats | null> {
  try {
    return await stat(path, { bigint: true });
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}

export function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * What logrotate and similar tools append to a rotated file's name: `.1`, `-20240514`,
 * `-2024-05-14`, `-20240514.1`, `_3`. Anything else (`full-debug`, `full.json`, `full.1.gz`) is
 * another file, never a rotated copy of this one.
 */
const ROTATED_SUFFIX = /^[._-]\d[\d._-]*$/;

interface Sibling {
  readonly name: string;
  readonly st: BigIntStats;
}

export interface Found {
  fh: FileHandle;
  st: BigIntStats;
  name: string;
}

/**
 * Regular files next to `path` named like rotated copies of it; the file at `path` itself too
 * when `withSelf`.
 */
async function listOnce(path: string, withSelf: boolean): Promise<Sibling[]> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
  const out: Sibling[] = [];
  for (const name of names.sort()) {
    const isSelf = name === base;
    if (isSelf ? !withSelf : !name.startsWith(base) || !ROTATED_SUFFIX.test(name.slice(base.length))) continue;
    const st = await statOrNull(join(dir, name));
    if (st?.isFile()) out.push({ name, st });
  }
  return out;
}

/**
 * The siblings, listed until two listings agree: logrotate renames one file after another
 * (full.1 → full.2, full → full.1), and a listing taken in the middle of that can show a file
 * under no name at all.
 */
async function siblings(path: string, withSelf = false): Promise<Sibling[]> {
  let prev = await listOnce(path, withSelf);
  for (let i = 0; i < 10; i++) {
    const next = await listOnce(path, withSelf);
    const same =
      next.length === prev.length && next.every((s, k) => s.name === prev[k]!.name && s.st.ino === prev[k]!.st.ino);
    if (same) return next;
    prev = next;
  }
  return prev;
}

/** Open a listed sibling; "moved" when its name now belongs to another file. */
async function openListed(path: string, s: Sibling): Promise<{ fh: FileHandle; st: BigIntStats } | "moved"> {
  let fh: FileHandle;
  try {
    fh = await open(join(dirname(path), s.name), "r");
  } catch (e) {
    if (isMissing(e)) return "moved";
    throw e;
  }
  const st = await fh.stat({ bigint: true });
  if (st.ino === s.st.ino && st.dev === s.st.dev) return { fh, st };
  await fh.close();
  return "moved";
}

/**
 * Run `attempt` again while it reports that a candidate moved under it (a rotation in
 * progress); a few rounds are enough, as every rotation ends.
 */
async function settled<T>(attempt: () => Promise<T | null | "moved">): Promise<T | null> {
  for (let i = 0; i < 5; i++) {
    const r = await attempt();
    if (r !== "moved") return r;
  }
  return null;
}

/**
 * Find where the bytes after a stored position went when `path` no longer holds them: a sibling
 * in the same directory named like a rotated copy (`full.1`, `full-20240514`),
 * that still starts with the stored head and is at least as long as the stored offset. The same
 * inode (rename-and-create) is preferred; otherwise a copy (copytruncate) is accepted, but only
 * when the head hash covers some bytes, since an empty head would match anything. `skipIno` is
 * the inode now at `path`, which was already judged not to hold the position.
 */
export function findPredecessor(path: string, pos: FilePosition, skipIno?: bigint): Promise<Found | null> {
  return settled(async () => {
    const candidates: (Sibling & { same: boolean })[] = [];
    for (const s of await siblings(path)) {
      const { st } = s;
      if (st.ino === skipIno || st.size < BigInt(pos.offset) || st.size < BigInt(pos.headLen)) continue;
      // The inode alone decides "same file": st_dev may change across a remount.
      const same = st.ino.toString() === pos.ino;
      if (!same && pos.headLen === 0) continue;
      candidates.push({ ...s, same });
    }
    // Same inode first, then the most recently modified copy.
    candidates.sort((a, b) => Number(b.same) - Number(a.same) || cmp(b.st.mtimeNs, a.st.mtimeNs));
    let moved = false;
    for (const c of candidates) {
      // Judged by what is opened, not by what was listed: under a rotation in progress the name
      // may already hold another file, which is just as good if it has the right content.
      let fh: FileHandle;
      try {
        fh = await open(join(dirname(path), c.name), "r");
      } catch (e) {
        if (!isMissing(e)) throw e;
        moved = true;
        continue;
      }
      const st = await fh.stat({ bigint: true });
      if (st.ino !== c.st.ino) moved = true;
      const fits =
        st.ino !== skipIno && st.size >= BigInt(pos.offset) && (pos.headLen > 0 || st.ino.toString() === pos.ino);
      if (fits && (await headMatches(fh, { len: pos.headLen, hash: pos.headHash }))) return { fh, st, name: c.name };
      await fh.close();
    }
    return moved ? "moved" : null;
  });
}

/**
 * Files finished in this run, by `dev:ino`, with the head they had: a file is one of them only
 * when its head matches too, since a deleted file's inode is soon reused by a new one (a
 * logrotate copy, say).
 */
export type Retired = ReadonlyMap<string, Head>;

function isRetired(retired: Retired, st: BigIntStats, head: Buffer): boolean {
  const known = retired.get(`${st.dev}:${st.ino}`);
  return known !== undefined && (known.len === 0 || startsAlike(head, known));
}

/**
 * The file to read after finishing a rotated one. Usually the file now at `path`; but when the
 * path was rotated more than once between two looks (a busy writer, a slow poll, a restart),
 * the files in between are only found under their rotated names. So, from one stable listing
 * of the path and its siblings: the oldest sibling written after the finished file (mtime),
 * not finished before in this run (`retired`), and not a copy of the finished file or of the
 * file at the path (same head bytes); else the file at the path. Choosing from one listing,
 * and opening by name with an inode check, keeps a rotation that happens during the search
 * from hiding a file. Null when there is no file at all.
 *
 * `head` is the chosen file's first bytes (up to HEAD_BYTES), read from the returned handle
 * while choosing: the choice holds for that content only. The file at the path is opened and
 * its head read once, before the candidates are judged against it, so a copytruncate at any
 * later moment shows as a changed head when the caller reads, and the copy it made still
 * starts with `head`.
 */
export function findNext(
  path: string,
  after: { mtimeNs: bigint; head: Head },
  retired: Retired,
): Promise<(Found & { atPath: boolean; head: Buffer }) | null> {
  const base = basename(path);
  return settled(async () => {
    const all = await siblings(path, true);
    const listedSelf = all.find((s) => s.name === base);
    let self: { fh: FileHandle; st: BigIntStats; head: Buffer } | null = null;
    try {
      if (listedSelf) {
        const so = await openListed(path, listedSelf);
        if (so === "moved") return "moved";
        self = { ...so, head: Buffer.alloc(0) }; // closed in `finally` should the read fail
        self.head = await readHead(so.fh, HEAD_BYTES);
      }
      const candidates = all.filter(({ name, st }) => name !== base && st.size > 0n && st.mtimeNs >= after.mtimeNs);
      candidates.sort((a, b) => cmp(a.st.mtimeNs, b.st.mtimeNs) || cmp(a.st.birthtimeNs, b.st.birthtimeNs));
      for (const c of candidates) {
        const o = await openListed(path, c);
        if (o === "moved") return "moved";
        let head: Buffer;
        try {
          head = await readHead(o.fh, HEAD_BYTES);
        } catch (e) {
          await o.fh.close();
          throw e;
        }
        const skip =
          isRetired(retired, o.st, head) ||
          (after.head.len > 0 && startsAlike(head, after.head)) ||
          (self !== null && self.head.length >= head.length && self.head.subarray(0, head.length).equals(head));
        if (!skip) return { ...o, name: c.name, atPath: false, head };
        await o.fh.close();
      }
      if (!self || isRetired(retired, self.st, self.head)) return null;
      const chosen = self;
      self = null; // handed over: not closed below
      return { ...chosen, name: base, atPath: true };
    } finally {
      await self?.fh.close();
    }
  });
}

/** Whether `head` and the hashed head describe the same leading bytes (over the shorter one). */
function startsAlike(head: Buffer, known: Head): boolean {
  if (head.length < known.len) return false;
  return hashHead(head, known.len) === known.hash;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
