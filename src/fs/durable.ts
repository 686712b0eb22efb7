/**
 * The few functions through which every write that must survive a crash goes:
 * write to a temporary name, fsync, rename, fsync the folder.
 *
 * Requires `--allow-read` and `--allow-write`.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Flush a file's data and metadata to disk. */
export function syncFile(path: string): void {
  using file = Deno.openSync(path, { read: true });
  file.syncSync();
}

/** Flush a folder's entries (names created, renamed or removed in it) to disk. */
export function syncDir(path: string): void {
  using dir = Deno.openSync(path, { read: true });
  dir.syncSync();
}

/**
 * Write `data` to `path` so that after a crash the path holds either its old
 * content or all of `data`: a temporary file beside it, fsync, rename, fsync the folder.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const temporary = temporaryPath(path);
  try {
    using file = Deno.openSync(temporary, { write: true, createNew: true });
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let written = 0;
    while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    file.syncSync();
  } catch (error) {
    removeQuietly(temporary);
    throw error;
  }
  renameDurable(temporary, path);
}

/** Rename and then fsync the folders of both names, so the move survives a crash. */
export function renameDurable(from: string, to: string): void {
  Deno.renameSync(from, to);
  syncDir(dirname(to));
  if (dirname(from) !== dirname(to)) syncDir(dirname(from));
}

/** A hidden name beside `path` for a file being written, unique to this process. */
export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
}

/** Create a folder and its parents, fsyncing the parent of the new folder. */
export function ensureDir(path: string): void {
  Deno.mkdirSync(path, { recursive: true });
  syncDir(dirname(path));
}

/**
 * Fsync every file and folder below `root`, deepest first, then `root` itself.
 * Symbolic links are not followed.
 */
export function syncTree(root: string): void {
  for (const entry of Deno.readDirSync(root)) {
    const path = join(root, entry.name);
    if (entry.isDirectory) syncTree(path);
    else if (entry.isFile) syncFile(path);
  }
  syncDir(root);
}

/** Remove a path and all below it, ignoring that it may already be gone. */
export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
