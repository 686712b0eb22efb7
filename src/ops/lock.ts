/**
 * The operation lock of a backup folder: one create, restore or cleanup at a time.
 *
 * An OS advisory lock (flock) on `<backup>/.lock`, so it is released when the
 * process ends, however it ends; a lock left by a killed process never blocks
 * the next run. Requires `--allow-read` and `--allow-write`.
 *
 * @module
 */
import { describeOsError, LockedError, OperationError, RefusedError } from "../errors.ts";
import { ensureDir } from "../fs/durable.ts";
import { lstatOrNull } from "../fs/probe.ts";
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
 * @throws {RefusedError} when the lock file is a symbolic link (it is never followed: the lock empties its file).
 * @throws {OperationError} naming the lock file when the folder cannot be made or the file opened (permissions).
 */
export function acquireLock(backupDir: string, operation: string): OperationLock {
  const path = lockPath(backupDir);
  let file: Deno.FsFile;
  try {
    ensureDir(backupDir);
    if (lstatOrNull(path)?.isSymlink) {
      throw new RefusedError(
        `the lock file ${path} is a symbolic link, and taking the lock would empty the file it points to; ` +
          `remove the link, then run again`,
      );
    }
    file = Deno.openSync(path, { read: true, write: true, create: true });
  } catch (error) {
    if (error instanceof RefusedError) throw error;
    throw new OperationError(
      `cannot open the lock file ${path} (${
        describeOsError(error)
      }); check that the backup folder is a folder this user may write to (--backup-dir or ATOCORE_BACKUP_DIR)`,
      { cause: error },
    );
  }
  if (!file.tryLockSync(true)) {
    const holder = new TextDecoder().decode(Deno.readFileSync(path)).trim() || "another process";
    file.close();
    throw new LockedError(
      `backup folder is locked by ${holder}: ${path}; wait for that operation to finish, then run again`,
    );
  }
  file.truncateSync(0);
  file.writeSync(new TextEncoder().encode(`${operation} (pid ${Deno.pid}, since ${new Date().toISOString()})\n`));
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    file.truncateSync(0);
    file.unlockSync();
    file.close();
  };
  return { release, [Symbol.dispose]: release };
}
