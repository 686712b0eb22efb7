/**
 * Moving an entry between two folders of one folder (a snapshot from `.staging` to `snapshots`, into `failed` or
 * `.trash`) by name between the two opened from it, never through a link: libc's `renameat`, then both flushed.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { ensureDir, FOLDER_MODE, renameDurable } from "./durable.ts";
import { exists, isDirectory } from "./probe.ts";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";

/** A folder of the moves was a symbolic link or not a folder when opened: nothing was moved. */
export class NotPlainFolderError extends Error {
  /** The refusal of the folder `path`. */
  constructor(readonly path: string) {
    super(`${path} is a symbolic link or not a folder, never moved through`);
  }
}

/** Options of {@linkcode moveBetweenFolders}. */
export interface MoveBetweenOptions {
  /** Refuse, with what it returns, when `target` exists: the move never replaces an entry. */
  refuseExisting?: (target: string) => Error;
  /** Told once the entry is renamed, before the folders are flushed (which may still fail). */
  onMoved?: () => void;
}

/**
 * Move `source` to `target` durably, both entries of folders of `parent` (`<parent>/<folder>/<name>`): by name between
 * the two folders, each opened from `parent` without following a link at its name, the target's folder made when
 * missing; both folders are flushed after. A writer who swaps either folder for a link after the caller's checks gets
 * a {@linkcode NotPlainFolderError} naming it, and nothing moves into or out of the link's target. Without libc's calls
 * (no FFI permission), by path.
 *
 * @throws {RangeError} when `source` or `target` is not two levels below `parent` (a bug of the caller).
 */
export function moveBetweenFolders(
  parent: string,
  source: string,
  target: string,
  options: MoveBetweenOptions = {},
): void {
  if (dirname(dirname(source)) !== parent || dirname(dirname(target)) !== parent) {
    throw new RangeError(`${source} or ${target} is not in a folder of ${parent}; please report this bug`);
  }
  const calls = folderCalls();
  if (calls === null) {
    if (!isDirectory(dirname(target))) ensureDir(dirname(target));
    if (options.refuseExisting && exists(target)) throw options.refuseExisting(target);
    renameDurable(source, target);
    return options.onMoved?.();
  }
  const held = calls.openFolder(parent);
  const opened = [held];
  try {
    const from = openPlain(calls, held, dirname(source));
    opened.push(from);
    try {
      calls.makeFolder(held, basename(dirname(target)), FOLDER_MODE, dirname(target));
      calls.syncNow(held, parent);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const to = openPlain(calls, held, dirname(target));
    opened.push(to);
    if (options.refuseExisting && calls.entry(to, basename(target), target) !== null) {
      throw options.refuseExisting(target);
    }
    calls.rename(from, basename(source), to, basename(target), target);
    options.onMoved?.();
    calls.syncNow(to, dirname(target));
    if (dirname(source) !== dirname(target)) calls.syncNow(from, dirname(source));
  } finally {
    for (const fd of opened) calls.close(fd);
  }
}

/** The folder `path` opened by its name in the folder `fd`; a link or a file there is refused, naming it. */
function openPlain(calls: FolderCalls, fd: number, path: string): number {
  try {
    return calls.openFolder(basename(path), { fd, shown: path });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== "ELOOP" && code !== "ENOTDIR") throw error;
    throw new NotPlainFolderError(path);
  }
}
