/**
 * The operation lock of a backup folder (one create, restore or cleanup at a time) and the live store's, which a
 * restore holds alone and creates share: an OS advisory lock (flock), released however the process ends.
 *
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { describeOsError, isUnusablePath, LockedError, OperationError, RefusedError, UsageError } from "../errors.ts";
import { kindOf } from "../fs/regular_file.ts";
import { ensureDir, FILE_MODE } from "../fs/durable.ts";
import { giveEntriesLike } from "../fs/give_tree.ts";
import { isDirectory, lstatOrNull, statOrNull } from "../fs/probe.ts";
import { notAFolder, unreachableFolder } from "./own_folders.ts";
import { refuseForeignLinks } from "./live_links.ts";
import { lockPath } from "../snapshot/layout.ts";

/** A held lock; release it with `using` or {@linkcode OperationLock.release}. */
export interface OperationLock extends Disposable {
  /** Release the lock (also done when the process ends). */
  release(): void;
}

/**
 * Take the backup folder's lock without waiting, creating the folder if needed.
 *
 * @param backupDir The backup folder.
 * @param operation The operation's name, recorded in the lock file for the message another run shows.
 * @throws {LockedError} naming the holder when another operation holds the lock.
 * @throws {UsageError} when the backup folder is a file (or anything but a folder).
 * @throws {RefusedError} when the lock file is a symbolic link (it is never followed: the lock empties its file) or
 *   not a regular file, or the folder leads through another user's link to what that user does not own.
 * @throws {OperationError} naming the lock file when the folder cannot be made, the file opened (permissions) or
 *   locked at all (a filesystem that keeps no locks).
 */
export function acquireLock(backupDir: string, operation: string): OperationLock {
  // a root run writes and removes snapshots where the folder leads: never through the service user's link to root's
  refuseForeignLinks([backupDir], operation);
  const path = lockPath(backupDir);
  let file: Deno.FsFile;
  let home: Deno.FileInfo | null = null;
  try {
    home = statOrNull(backupDir);
  } catch {
    // a path through a file: opening the lock file names it below
  }
  if (home !== null && !home.isDirectory) throw new UsageError(notAFolder(backupDir, home));
  try {
    ensureDir(backupDir);
    const info = lstatOrNull(path);
    if (info?.isSymlink) {
      throw new RefusedError(
        `the lock file ${path} is a symbolic link, and taking the lock would empty the file it points to; ` +
          `remove the link, then run again`,
      );
    }
    if (info !== null && !info.isFile) {
      throw new RefusedError(`the lock file ${path} is a ${kindOf(info)}, not a file; remove it, then run again`);
    }
    file = openLockFile(path, info === null);
    refuseOtherFile(file, path);
    if (info === null) giveEntriesLike(backupDir, [basename(path)]); // a root run's: the service's user's runs open it
  } catch (error) {
    if (error instanceof RefusedError || isUnusablePath(error)) throw error; // a path that names nothing: a usage error
    // a path through a file names no folder: a usage error, as a dry-run cleanup or list says
    if (error instanceof Deno.errors.NotADirectory) throw new UsageError(unreachableFolder(backupDir, error));
    throw new OperationError(
      `cannot open the lock file ${path} (${
        describeOsError(error)
      }); check that the backup folder is a folder this user may write to (--backup-dir or ATOCORE_BACKUP_DIR)`,
      { cause: error },
    );
  }
  if (!tryLock(file, path)) {
    const holder = holderNote(file) || "another process";
    file.close();
    throw new LockedError(
      `backup folder is locked by ${holder}: ${path}; wait for that operation to finish, then run again`,
    );
  }
  noteHolder(file, `${operation} (pid ${Deno.pid}, since ${new Date().toISOString()})\n`);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    noteHolder(file, "");
    file.unlockSync();
    file.close();
  };
  return { release, [Symbol.dispose]: release };
}

/**
 * Take the exclusive lock of `file`, the lock file at `path`, without waiting: whether it was taken. Any other failure
 * (ENOLCK: a filesystem that keeps no locks, some network mounts) closes `file` and says what to do, in one line.
 */
function tryLock(file: Deno.FsFile, path: string): boolean {
  try {
    return file.tryLockSync(true);
  } catch (error) {
    file.close();
    throw new OperationError(
      `cannot lock the backup folder through its lock file ${path} (${describeOsError(error)}); put the backup ` +
        "folder on a filesystem that keeps locks (--backup-dir or ATOCORE_BACKUP_DIR), then run again",
      { cause: error },
    );
  }
}

/**
 * Open the lock file: made with O_EXCL when there was none (a link swapped in meanwhile is never created through),
 * else opened as it is (checked by {@linkcode refuseOtherFile}).
 */
function openLockFile(path: string, make: boolean): Deno.FsFile {
  if (make) {
    try {
      return Deno.openSync(path, { read: true, write: true, createNew: true, mode: FILE_MODE });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error; // another run made it meanwhile: open that one
    }
  }
  return Deno.openSync(path, { read: true, write: true });
}

/**
 * Refuse, closing `file`, unless the lock file opened is the one at `path` and no other name shares it: a link swapped
 * in after the check above is followed by `open`, and a hard link to a live file (the backup folder is usually on the
 * store's filesystem) would be emptied by the holder's note.
 */
function refuseOtherFile(file: Deno.FsFile, path: string): void {
  const opened = file.statSync();
  const named = lstatOrNull(path);
  if (opened.isFile && opened.nlink === 1 && named?.isFile && named.ino === opened.ino && named.dev === opened.dev) {
    return;
  }
  file.close();
  const what = named?.isFile === false ? `a ${kindOf(named)}` : `a file with ${opened.nlink} names (a hard link)`;
  throw new RefusedError(
    `the lock file ${path} is ${what}, and taking the lock would empty the file it shares; remove ${path}, then run ` +
      "again",
  );
}

/** Most bytes of the holder's note read: a note is one line of under 100 bytes. */
const MAX_NOTE_BYTES = 256;

/**
 * The first line of the holder's note, read from the lock file opened and checked, never by its path again (where a
 * link or FIFO may be swapped in), and at most {@linkcode MAX_NOTE_BYTES}: the holder may write the file as it likes.
 */
function holderNote(file: Deno.FsFile): string {
  try {
    const buffer = new Uint8Array(MAX_NOTE_BYTES);
    file.seekSync(0, Deno.SeekMode.Start);
    const read = file.readSync(buffer) ?? 0;
    return new TextDecoder().decode(buffer.subarray(0, read)).split("\n")[0].trim();
  } catch {
    return ""; // unreadable: another process, unnamed
  }
}

/**
 * Write who holds the lock into its file, for the message another run shows. Best effort: the OS lock is what
 * excludes, and a full backup disk must not stop the cleanup that frees it.
 */
function noteHolder(file: Deno.FsFile, text: string): void {
  try {
    file.truncateSync(0);
    if (text) file.writeSync(new TextEncoder().encode(text));
  } catch {
    // the note is missing: another run says "another process" instead of the operation
  }
}

/** How {@linkcode acquireLockToRead} locked the backup folder. */
export interface ReadingLock extends Disposable {
  /** `writable` as {@linkcode acquireLock}; `read-only` through a descriptor opened read-only; `none` not locked. */
  how: "writable" | "read-only" | "none";
  /** Why it is not `writable`, when it is not. */
  reason?: string;
}

/**
 * Take the lock for an operation that writes nothing in the backup folder, which may be read-only (an offsite copy
 * mounted read-only, a folder of another user). Where the folder may be written, as {@linkcode acquireLock}. Where
 * it may not, the existing `.lock` is opened read-only and locked all the same (flock needs no write access), so a
 * cleanup run through a writable path to the same folder still waits; where there is no `.lock` to open, no run of
 * this tool has locked the folder yet, and none is taken (`none`). A missing folder is not created (`none`).
 *
 * @throws {LockedError} naming the holder when another operation holds the lock.
 * @throws {RefusedError} naming the lock file when it is no longer the file looked at once opened, or its open does
 *   not end within {@linkcode LOCK_OPEN_MS} (a FIFO or device the folder's writer swapped in meanwhile).
 * @throws {OperationError} naming the lock file when it cannot be locked at all (a filesystem that keeps no locks).
 */
export async function acquireLockToRead(backupDir: string, operation: string): Promise<ReadingLock> {
  const none = (reason: string): ReadingLock => ({ how: "none", reason, [Symbol.dispose]: () => {} });
  if (!isDirectory(backupDir)) return none("the backup folder does not exist");
  let cause: unknown;
  try {
    const lock = acquireLock(backupDir, operation);
    return { how: "writable", [Symbol.dispose]: () => lock.release() };
  } catch (error) {
    if (!(error instanceof OperationError)) throw error;
    cause = error.cause;
    if (!isReadOnly(cause)) throw error;
  }
  const reason = `the backup folder may not be written (${describeOsError(cause)})`;
  const path = lockPath(backupDir);
  const look = lstatOrNull(path);
  if (!look?.isFile) return none(`${reason} and holds no lock file`);
  const file = await openLookedAt(path, look);
  if (!tryLock(file, path)) {
    file.close();
    throw new LockedError(`backup folder is locked by another process: ${path}; wait for it to finish, then run again`);
  }
  return { how: "read-only", reason, [Symbol.dispose]: () => file.close() };
}

/** Longest wait for the open of a read-only folder's lock file: a regular file's open ends at once, even over NFS. */
export const LOCK_OPEN_MS = 10_000;

/**
 * Open the lock file at `path` read-only, held to be the regular file `look` found there: its folder's writer may swap
 * in a FIFO, whose open waits for ever for a writer (Deno's open takes no `O_NONBLOCK`), so the open is given up after
 * {@linkcode LOCK_OPEN_MS}, or a link, which the open follows.
 */
async function openLookedAt(path: string, look: Deno.FileInfo): Promise<Deno.FsFile> {
  const refused = (what: string) =>
    new RefusedError(
      `the lock file ${path} ${what} (a FIFO, device or link put in its place since it was looked at); nothing was ` +
        "done; have the backup folder's owner make it an empty file again, then run again",
    );
  const opening = Deno.open(path, { read: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), LOCK_OPEN_MS));
  const file = await Promise.race([opening, late]).finally(() => clearTimeout(timer));
  if (file === null) {
    opening.then((opened) => opened.close(), () => {}); // should it ever open: never used, never left open
    throw refused(`did not open within ${LOCK_OPEN_MS / 1000} s`);
  }
  const opened = await file.stat().catch((error) => {
    file.close();
    throw error;
  });
  if (opened.isFile && opened.dev === look.dev && opened.ino === look.ino) return file;
  file.close();
  throw refused("opened is not the file that was there a moment before");
}

/** Tell whether a write failed because the folder may not be written (a read-only mount, permissions). */
export function isReadOnly(error: unknown): boolean {
  return error instanceof Deno.errors.PermissionDenied || (error as { code?: unknown } | null)?.code === "EROFS";
}

/**
 * Lock the live store against another run of this tool reaching it through another backup folder: an OS lock on the
 * folder holding the live database, exclusive for a restore into it, shared for a create. Not taken (nothing to
 * exclude) where that folder cannot be opened.
 *
 * @throws {LockedError} when another run holds it the other way.
 * @throws {OperationError} naming the folder when it cannot be locked at all (a filesystem that keeps no locks).
 */
export function lockLiveStore(dbPath: string, operation: "restore" | "create"): Disposable {
  const folder = dirname(resolve(dbPath));
  let handle: Deno.FsFile;
  try {
    handle = Deno.openSync(folder, { read: true });
  } catch {
    return { [Symbol.dispose]: () => {} }; // no folder yet (a restore makes it) or none this user may open
  }
  let locked: boolean;
  try {
    locked = handle.tryLockSync(operation === "restore");
  } catch (error) {
    handle.close();
    throw new OperationError(
      `cannot lock the live store's folder ${folder} (${describeOsError(error)}); put the live store on a ` +
        "filesystem that keeps locks, then run again",
      { cause: error },
    );
  }
  if (!locked) {
    handle.close();
    const other = operation === "restore" ? "a create or restore" : "a restore";
    throw new LockedError(
      `the live store in ${folder} is in use by ${other} of another run of this tool (through another backup ` +
        "folder?); wait for it to finish, then run again",
    );
  }
  return { [Symbol.dispose]: () => handle.close() };
}
