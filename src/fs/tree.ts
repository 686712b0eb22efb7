/**
 * Walking and copying folder trees without ever following a symbolic link.
 *
 * Requires `--allow-read` (and `--allow-write` to copy).
 *
 * @module
 */
import { copyModeFrom } from "./durable.ts";
import { copyReachedFile } from "./reached_copy.ts";
import { reachedFile } from "./reached_file.ts";
import { join } from "node:path";
import { listNames } from "./listing.ts";

/** One entry of a tree, seen with `lstat`. */
export interface TreeEntry {
  /** Path relative to the tree's root, with `/` separators. */
  path: string;
  /** What the entry is; anything else (sockets, devices) is `other`. */
  kind: "file" | "dir" | "symlink" | "other";
  /** Size in bytes (of the link itself for a symbolic link). */
  size: number;
  /** Modification time in milliseconds, or `null` where the system gives none. */
  mtimeMs: number | null;
}

/** Totals of a copy. */
export interface CopyTotals {
  files: number;
  bytes: number;
}

/**
 * Every entry below `root` (not `root` itself), parents before children, sorted by name.
 *
 * @param skip Leaves out an entry (and, for a folder, all below it) when it returns true.
 */
export function walkTree(root: string, skip: (path: string) => boolean = () => false): TreeEntry[] {
  const entries: TreeEntry[] = [];
  const visit = (relative: string) => {
    const names = listNames(join(root, relative)).sort();
    for (const name of names) {
      const path = relative ? `${relative}/${name}` : name;
      if (skip(path)) continue;
      const info = lstatNamed(root, path);
      const kind = info.isSymlink ? "symlink" : info.isDirectory ? "dir" : info.isFile ? "file" : "other";
      entries.push({ path, kind, size: info.size, mtimeMs: info.mtime?.getTime() ?? null });
      if (kind === "dir") visit(path);
    }
  };
  visit("");
  return entries;
}

/**
 * An entry whose name is not UTF-8: Deno gives it with U+FFFD in place of its bytes, a name that reaches nothing, so it
 * can be neither read nor copied by name (it is not an entry that vanished: a retry meets it again).
 */
export class UnnamableEntryError extends Error {
  /** The entry at `path`, as Deno shows it. */
  constructor(readonly path: string) {
    super(`${path}: its name is not UTF-8, so this tool cannot read or copy it; rename it (ls -b shows its bytes)`);
    this.name = "UnnamableEntryError";
  }
}

/** `lstat` of `path` below `root`, as walked: a name read from the folder that reaches nothing for its bytes throws. */
function lstatNamed(root: string, path: string): Deno.FileInfo {
  try {
    return Deno.lstatSync(join(root, path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && path.includes("\uFFFD")) {
      throw new UnnamableEntryError(join(root, path));
    }
    throw error;
  }
}

/**
 * Copy the entries of a walked tree from `source` into the existing folder `target`:
 * files with their content, mode and modification time, symbolic links as links
 * (never followed). Sockets and devices are skipped.
 *
 * @param onProgress Called after each file with the bytes copied so far and the walked total (for progress).
 */
export function copyEntries(
  source: string,
  target: string,
  entries: TreeEntry[],
  onProgress?: (done: number, total: number) => void,
): CopyTotals {
  const total = entries.reduce((sum, entry) => sum + (entry.kind === "file" ? entry.size : 0), 0);
  const totals = { files: 0, bytes: 0 };
  const root = realRoot(source);
  const folders: string[] = [];
  for (const entry of entries) {
    const from = join(source, entry.path);
    const to = join(target, entry.path);
    if (entry.kind === "dir") {
      Deno.mkdirSync(to);
      folders.push(entry.path);
    } else if (entry.kind === "symlink") {
      Deno.symlinkSync(Deno.readLinkSync(from), to);
    } else if (entry.kind === "file") {
      copyReachedFile(from, join(root, entry.path), to); // never a file a link put there since the walk
      copyModeFrom(from, to); // less any write permission for group and others
      const info = Deno.statSync(to);
      if (entry.mtimeMs !== null) Deno.utimeSync(to, info.atime ?? new Date(), new Date(entry.mtimeMs));
      totals.files += 1;
      totals.bytes += info.size;
      onProgress?.(totals.bytes, total);
    }
  }
  // each folder as open to others as its source, once filled (one without write permission could not be filled)
  for (const path of folders.reverse()) copyModeFrom(join(source, path), join(target, path));
  return totals;
}

/** The real path of the tree's root `source`, as its files are reached (links judged); as given without libc's calls. */
function realRoot(source: string): string {
  return reachedFile(source)?.path ?? source;
}

/**
 * Tell the paths whose size, kind or modification time differ between two walks
 * of the same tree (added and removed entries included): a copy made between
 * them may be torn.
 */
export function changedPaths(before: TreeEntry[], after: TreeEntry[]): string[] {
  const key = (entry: TreeEntry) => `${entry.kind}:${entry.size}:${entry.mtimeMs}`;
  const earlier = new Map(before.map((entry) => [entry.path, key(entry)]));
  const later = new Map(after.map((entry) => [entry.path, key(entry)]));
  const paths = new Set([...earlier.keys(), ...later.keys()]);
  return [...paths].filter((path) => earlier.get(path) !== later.get(path)).sort();
}
