/**
 * Which other processes have a file open, from Linux's `/proc/<pid>/fd`, so that restore can refuse while the
 * service still holds the database. Deno lets only `--allow-all` programs read `/proc`, and the tool runs with
 * narrower permissions, so it is read through libc (`opendir`, `readdir`, `readlink`) with `Deno.dlopen`.
 *
 * @module
 */
import { cString } from "./c_string.ts";
import { basename, dirname, join } from "node:path";

/** A process holding one of the files asked about. */
export interface OpenFile {
  /** Its process id. */
  pid: number;
  /** The file it holds, as asked (not as resolved). */
  path: string;
}

/** What a scan of `/proc` found. */
export interface OpenFilesScan {
  /** Whether the scan ran (`false` off Linux, without `/proc`, or without a loadable libc). */
  scanned: boolean;
  /** Processes other than this one holding one of the files, by pid then path. */
  openers: OpenFile[];
  /** Processes whose descriptors could not be read. */
  unreadable: number;
}

/** Library names tried for libc: glibc, then musl. */
export const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];

const LIBC_SYMBOLS = {
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** Offset of `d_name` in Linux's `struct dirent` on 64-bit systems (glibc and musl). */
const DIRENT_NAME_OFFSET = 19;
const ENOENT = 2;
const ESRCH = 3;
const PATH_MAX = 4096;

/** A read of `/proc` that ran, or why it did not: the process is gone, or its entries are not ours to read. */
type ProcRead<T> = T | "gone" | "denied";

/**
 * Find the processes, other than this one, that have any of `paths` open.
 *
 * Paths are compared after resolving symbolic links, as the kernel shows open
 * files; a path that does not exist yet is matched through its folder.
 *
 * @param paths Files to look for (missing ones are fine).
 * @returns The processes found, and how many could not be read.
 *
 * @example
 * ```ts
 * const scan = findOpeners(["/srv/atocore/atocore.db", "/srv/atocore/atocore.db-wal"]);
 * if (scan.openers.length) console.log(scan.openers.map((opener) => opener.pid));
 * ```
 */
export function findOpeners(paths: string[]): OpenFilesScan {
  const result: OpenFilesScan = { scanned: false, openers: [], unreadable: 0 };
  if (Deno.build.os !== "linux") return result;
  const library = openLibc();
  if (library === null) return result;
  try {
    const libc = library.symbols;
    const processes = listDir(libc, "/proc");
    if (typeof processes === "string") return result;
    result.scanned = true;
    const wanted = new Map(paths.map((path) => [resolvePath(path), path]));
    const pids = processes.filter((name) => /^\d+$/.test(name)).map(Number).sort((a, b) => a - b);
    for (const pid of pids) {
      if (pid === Deno.pid) continue;
      const held = heldFiles(libc, `/proc/${pid}/fd`);
      if (held === "denied") result.unreadable += 1;
      if (typeof held === "string") continue;
      const found = new Set([...held].filter((target) => wanted.has(target)).map((target) => wanted.get(target)!));
      for (const path of [...found].sort()) result.openers.push({ pid, path });
    }
    return result;
  } finally {
    library.close();
  }
}

function openLibc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null {
  for (const name of LIBC_NAMES) {
    try {
      return Deno.dlopen(name, LIBC_SYMBOLS);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) throw error;
    }
  }
  return null;
}

/** The targets of a process's descriptors. */
function heldFiles(libc: Libc, fdDir: string): ProcRead<Set<string>> {
  const names = listDir(libc, fdDir);
  if (typeof names === "string") return names;
  const targets = new Set<string>();
  for (const name of names) {
    const target = readLink(libc, `${fdDir}/${name}`);
    if (target === "denied") return target;
    if (target !== "gone") targets.add(target);
  }
  return targets;
}

function listDir(libc: Libc, path: string): ProcRead<string[]> {
  const dir = libc.opendir(cString(path));
  if (dir === null) return failure(libc);
  try {
    const names: string[] = [];
    for (let entry = libc.readdir(dir); entry !== null; entry = libc.readdir(dir)) {
      const name = Deno.UnsafePointerView.getCString(entry, DIRENT_NAME_OFFSET);
      if (name !== "." && name !== "..") names.push(name);
    }
    return names;
  } finally {
    libc.closedir(dir);
  }
}

function readLink(libc: Libc, path: string): ProcRead<string> {
  const buffer = new Uint8Array(PATH_MAX);
  const length = Number(libc.readlink(cString(path), buffer, BigInt(buffer.length)));
  if (length < 0) return failure(libc);
  return new TextDecoder().decode(buffer.subarray(0, length));
}

/** Why the last libc call failed: the process ended (`ENOENT`, `ESRCH`), else we may not read it. */
function failure(libc: Libc): "gone" | "denied" {
  const errno = new Deno.UnsafePointerView(libc.__errno_location()!).getInt32();
  return errno === ENOENT || errno === ESRCH ? "gone" : "denied";
}

/** `path` with its symbolic links resolved (its folder's, when it does not exist), as `/proc` shows open files. */
function resolvePath(path: string): string {
  for (const resolve of [() => Deno.realPathSync(path), () => join(Deno.realPathSync(dirname(path)), basename(path))]) {
    try {
      return resolve();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return path;
}
