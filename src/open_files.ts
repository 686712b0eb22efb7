/**
 * Which other processes have a file open, read from Linux's `/proc/<pid>/fd`.
 *
 * Restore uses it to refuse while the service still has the live database open.
 * On other systems, and where `/proc` is not mounted, nothing is found. Processes
 * whose descriptors cannot be read (another user's, when not root) are counted,
 * not guessed at. Requires `--allow-read`.
 *
 * @module
 */
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
  /** Whether the scan ran (`false` off Linux or without `/proc`). */
  scanned: boolean;
  /** Processes other than this one holding one of the files, by pid then path. */
  openers: OpenFile[];
  /** Processes whose descriptors could not be read. */
  unreadable: number;
}

/**
 * Find the processes, other than this one, that have any of `paths` open.
 *
 * Paths are compared after resolving symbolic links, as the kernel shows open
 * files; a path that does not exist yet is matched through its folder.
 *
 * @param paths Files to look for (missing ones are fine).
 * @param procRoot The proc file system's mount point (tests may point elsewhere).
 * @returns The processes found, and how many could not be read.
 *
 * @example
 * ```ts
 * const scan = findOpeners(["/srv/atocore/atocore.db", "/srv/atocore/atocore.db-wal"]);
 * if (scan.openers.length) console.log(scan.openers.map((opener) => opener.pid));
 * ```
 */
export function findOpeners(paths: string[], procRoot = "/proc"): OpenFilesScan {
  const result: OpenFilesScan = { scanned: false, openers: [], unreadable: 0 };
  if (Deno.build.os !== "linux") return result;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(procRoot)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return result;
    throw error;
  }
  result.scanned = true;
  const wanted = new Map(paths.map((path) => [resolvePath(path), path]));
  const pids = entries.filter((entry) => /^\d+$/.test(entry.name)).map((entry) => Number(entry.name));
  for (const pid of pids.sort((a, b) => a - b)) {
    if (pid === Deno.pid) continue;
    const held = heldFiles(join(procRoot, String(pid), "fd"));
    if (held === null) {
      result.unreadable += 1;
      continue;
    }
    const found = new Set([...held].filter((target) => wanted.has(target)).map((target) => wanted.get(target)!));
    for (const path of [...found].sort()) result.openers.push({ pid, path });
  }
  return result;
}

/** The targets of a process's descriptors, or `null` when they cannot be read; a process that ended holds none. */
function heldFiles(fdDir: string): Set<string> | null {
  const targets = new Set<string>();
  let names: string[];
  try {
    names = [...Deno.readDirSync(fdDir)].map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return targets;
    if (error instanceof Deno.errors.PermissionDenied) return null;
    throw error;
  }
  for (const name of names) {
    try {
      targets.add(Deno.readLinkSync(join(fdDir, name)));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      if (error instanceof Deno.errors.PermissionDenied) return null;
      throw error;
    }
  }
  return targets;
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
