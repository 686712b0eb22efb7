/**
 * Which file a connection of the FFI driver opened, told by its descriptor: a live database's path may be swapped for a
 * link between the check of its links and SQLite's open, and only the descriptor says which file SQLite reads.
 *
 * @module
 */
import { RefusedError } from "../errors.ts";
import { folderCalls, type Identity } from "../sys/folder_calls.ts";

/** `sqlite3_file_control`'s operation giving the `sqlite3_file` of a database. */
export const SQLITE_FCNTL_FILE_POINTER = 7;
/** Where the unix VFS keeps the descriptor in its `unixFile` (after three pointers: methods, VFS, inode). */
const UNIX_FILE_DESCRIPTOR_OFFSET = 24;

/** The database a backup opened is not the file its path reached when its links were judged: it was replaced since. */
export class ReplacedDatabaseError extends RefusedError {
  /** Name the path. */
  constructor(path: string) {
    super(
      `refused to copy the database ${path}: SQLite opened another file than the one its path reached when its links ` +
        "were checked (it was replaced meanwhile, a link put in its place?); nothing was published; find who changes " +
        "it, then run create again",
    );
  }
}

/**
 * The copy a backup opened is not the file made for it in a folder held open: that folder was moved or swapped for a
 * link since (the caller names it); nothing was written to the file opened.
 */
export class MovedCopyError extends Error {
  /** Name the path. */
  constructor(readonly path: string) {
    super(`SQLite opened another file than the one made for the copy at ${path} (its folder was moved meanwhile?)`);
  }
}

/**
 * Refuse unless the `sqlite3_file` at `file` (the unix VFS's) holds the file `expected`: called right after the open,
 * before a page is read or written. Where libc's calls do not load there is nothing to compare with, and the check is
 * skipped.
 *
 * @throws {ReplacedDatabaseError} naming `path`, or what `replaced` makes.
 */
export function requireOpenedFile(
  file: Deno.PointerObject,
  path: string,
  expected: Identity,
  replaced: (path: string) => Error = (path) => new ReplacedDatabaseError(path),
): void {
  const calls = folderCalls();
  if (calls === null) return;
  const fd = new Deno.UnsafePointerView(file).getInt32(UNIX_FILE_DESCRIPTOR_OFFSET);
  let opened: Identity;
  try {
    opened = calls.identity(fd, path);
  } catch {
    throw replaced(path); // not a descriptor: not the unix VFS's file, so nothing known of it
  }
  if (opened.dev !== expected.dev || opened.ino !== expected.ino) throw replaced(path);
}
