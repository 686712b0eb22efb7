/**
 * Which other processes hold a file, so that restore can refuse while the service still has the database: matched by
 * the file's identity (device and inode), not its path, in every process's descriptors and memory maps and in the
 * kernel's lock table, so a bind mount, a hard link or another mount namespace does not hide the holder.
 *
 * @module
 */
import {
  canIdentify,
  type FileIdentity,
  identify,
  type Libc,
  listDir,
  ListingFailedError,
  openLibc,
  readLink,
  readText,
} from "./proc_read.ts";
import { type FileKey, fileKey, parseLocks, parseMaps, parseMountDevices } from "./proc_tables.ts";

/** How a process holds a file: a descriptor open on it, a memory map of it, a lock on it, or a lock it waits for. */
export type HoldWay = "open" | "mapped" | "locked" | "waiting for a lock";

/** A process holding one of the files asked about. */
export interface OpenFile {
  /** Its process id; `null` for a lock the kernel names no process for (an open-file-description or remote lock). */
  pid: number | null;
  /** The file it holds, as asked (not as resolved). */
  path: string;
  /** How it holds it, in the order of {@linkcode HoldWay}. */
  ways: HoldWay[];
  /** The path its descriptor shows, in its own mount namespace, when that is not `path`. */
  seenAs?: string;
}

/** What a scan of `/proc` found. */
export interface OpenFilesScan {
  /** Whether the scan ran (`false` off Linux, without `/proc`, or without a loadable libc). */
  scanned: boolean;
  /** Holders other than this process, by pid (unnamed last) then path. */
  openers: OpenFile[];
  /** Processes whose descriptors or maps could not be read (their locks were still looked for). */
  unreadable: number;
  /** Whether the kernel's lock table (`/proc/locks`) was read. */
  locksChecked: boolean;
  /** Why the scan stopped part way (a listing of `/proc` that failed), when it did: holders may then be missing. */
  failed?: string;
}

const WAY_ORDER: HoldWay[] = ["open", "mapped", "locked", "waiting for a lock"];

/**
 * Find the holders, other than this process, of any of `paths`: processes with a descriptor open on the same file or a
 * map of it, and the holders of locks on it (the way SQLite marks a live connection to a database and its `-shm`).
 *
 * @param paths Files to look for (missing ones are fine: nothing can hold them).
 * @returns The holders found, how many processes could not be read, whether the lock table was, and why the scan
 *   stopped part way, if it did.
 *
 * @example
 * ```ts
 * const scan = findOpeners(["/srv/atocore/atocore.db", "/srv/atocore/atocore.db-shm"]);
 * if (scan.openers.length) console.log(scan.openers.map((opener) => opener.pid));
 * ```
 */
export function findOpeners(paths: string[]): OpenFilesScan {
  const result: OpenFilesScan = { scanned: false, openers: [], unreadable: 0, locksChecked: false };
  if (Deno.build.os !== "linux") return result;
  const library = openLibc();
  if (library === null) return result;
  try {
    const libc = library.symbols;
    const processes = canIdentify(libc) ? listDir(libc, "/proc") : "denied";
    if (typeof processes === "string") return result;
    result.scanned = true;
    const wanted = wantedFiles(libc, paths);
    if (wanted.size === 0) return { ...result, locksChecked: true }; // none exists, so nothing can hold one
    const holds = new Holds();
    const pids = processes.filter((name) => /^\d+$/.test(name)).map(Number).sort((a, b) => a - b);
    for (const pid of pids) {
      if (pid !== Deno.pid && scanProcess(libc, pid, wanted, holds) === "denied") result.unreadable += 1;
    }
    result.locksChecked = scanLocks(libc, wanted, holds);
    result.openers = holds.list();
    return result;
  } catch (error) {
    if (!(error instanceof ListingFailedError)) throw error;
    return { ...result, failed: error.message };
  } finally {
    library.close();
  }
}

/** Record the holders of locks on the files; `false` when the lock table could not be read. */
function scanLocks(libc: Libc, wanted: Map<FileKey, string[]>, holds: Holds): boolean {
  const locks = readText(libc, "/proc/locks");
  if (typeof locks === "string") return false;
  for (const lock of parseLocks(locks.text)) {
    if (lock.pid === Deno.pid) continue;
    for (const path of wanted.get(lock.file) ?? []) {
      holds.add(lock.pid, path, lock.waiting ? "waiting for a lock" : "locked");
    }
  }
  return true;
}

/**
 * The files asked about, by every key they may be named by: `stat`'s device, and the device of the filesystem they
 * are mounted from (which the lock table and maps use, and which differs on btrfs subvolumes).
 */
function wantedFiles(libc: Libc, paths: string[]): Map<FileKey, string[]> {
  const wanted = new Map<FileKey, string[]>();
  let mounts: Map<number, [number, number]> | null = null;
  for (const path of paths) {
    const identity = identify(libc, path);
    if (typeof identity === "string") continue;
    const keys = new Set([keyOf(identity)]);
    if (identity.mount !== null) {
      if (mounts === null) {
        const text = readText(libc, "/proc/self/mountinfo");
        mounts = typeof text === "string" ? new Map() : parseMountDevices(text.text);
      }
      const device = mounts.get(identity.mount);
      if (device) keys.add(fileKey(device[0], device[1], identity.inode));
    }
    for (const key of keys) wanted.set(key, [...(wanted.get(key) ?? []), path]);
  }
  return wanted;
}

/** Record what process `pid` holds through its descriptors and maps; `"denied"` when they may not be read. */
function scanProcess(libc: Libc, pid: number, wanted: Map<FileKey, string[]>, holds: Holds): "denied" | void {
  const fdDir = `/proc/${pid}/fd`;
  const fds = listDir(libc, fdDir);
  if (fds === "denied") return fds;
  if (fds === "gone") return;
  for (const fd of fds) {
    const identity = identify(libc, `${fdDir}/${fd}`);
    if (identity === "denied") return identity;
    if (identity === "gone") continue;
    const held = wanted.get(keyOf(identity)) ?? [];
    if (held.length === 0) continue;
    const seen = readLink(libc, `${fdDir}/${fd}`);
    for (const path of held) holds.add(pid, path, "open", seen === "gone" || seen === "denied" ? undefined : seen);
  }
  const maps = readText(libc, `/proc/${pid}/maps`);
  if (maps === "denied") return maps;
  if (maps === "gone") return;
  for (const key of parseMaps(maps.text)) {
    for (const path of wanted.get(key) ?? []) holds.add(pid, path, "mapped");
  }
}

function keyOf(identity: FileIdentity): FileKey {
  return fileKey(identity.major, identity.minor, identity.inode);
}

/** The holds found so far, one entry per process and file. */
class Holds {
  #entries = new Map<string, { pid: number | null; path: string; ways: Set<HoldWay>; seenAs?: string }>();

  add(pid: number | null, path: string, way: HoldWay, seenAs?: string): void {
    const id = `${pid}\0${path}`;
    const entry = this.#entries.get(id) ?? { pid, path, ways: new Set<HoldWay>() };
    entry.ways.add(way);
    if (seenAs !== undefined && seenAs !== path) entry.seenAs ??= seenAs;
    this.#entries.set(id, entry);
  }

  list(): OpenFile[] {
    const order = (pid: number | null) => pid ?? Number.MAX_SAFE_INTEGER;
    return [...this.#entries.values()]
      .sort((a, b) => order(a.pid) - order(b.pid) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .map(({ pid, path, ways, seenAs }) => ({
        pid,
        path,
        ways: WAY_ORDER.filter((way) => ways.has(way)),
        ...(seenAs === undefined ? {} : { seenAs }),
      }));
  }
}
