/**
 * The few functions through which every write that must survive a crash goes (temporary name, fsync,
 * rename, fsync the folder), so that crash safety is written, and reviewed, once.
 *
 * @module
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, fsync, fsyncSync, openSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, sep } from "node:path";
import { RefusedError } from "../errors.ts";
import { entriesOrNone, lstatOrNull, statOrNull } from "./probe.ts";
import { copyHashed } from "./hash.ts";
import { kindOf, notRegularFile, NotRegularFileError, openNonBlocking } from "./regular_file.ts";
import { mountPointsAt } from "../sys/mounts.ts";
import { listEntries } from "./listing.ts";

/** Flush a file's data and metadata to disk (opened non-blocking: a FIFO swapped in fails, EINVAL, never waits). */
export function syncFile(path: string): void {
  const fd = openNonBlocking(path, true);
  try {
    fsyncSync(fd);
  } catch (error) {
    throw namingPath(error, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * `error` with `path` as the path it names, when it names none: a failed fsync of `node:fs` or Deno says only "Input/output
 * error", and the operator must know which file or folder did not reach the disk.
 */
function namingPath(error: unknown, path: string): unknown {
  if (error instanceof Error && typeof (error as { path?: unknown }).path !== "string") {
    Object.assign(error, { path });
  }
  return error;
}

/** Flush a folder's entries (names created, renamed or removed in it) to disk (a FIFO swapped in fails, never waits). */
export function syncDir(path: string): void {
  const fd = openNonBlocking(path, true, constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } catch (error) {
    throw namingPath(error, path);
  } finally {
    closeSync(fd);
  }
}

/** Flush the open `file`, to be named `path`: an error names it. */
function syncOpened(file: Deno.FsFile, path: string): void {
  try {
    file.syncSync();
  } catch (error) {
    throw namingPath(error, path);
  }
}

/**
 * Write `data` (text, bytes, or bytes in parts written one after the other) to `path` so that after a crash the path
 * holds either its old content or all of `data`: a temporary file beside it, fsync, rename, fsync the folder.
 * `beforeRename` is called with the temporary file's path once it is flushed, before it takes its name (e.g. to give
 * it away: the file is never seen under its name with another owner).
 */
export function writeFileAtomic(
  path: string,
  data: Uint8Array | string | Iterable<Uint8Array>,
  options: { beforeRename?: (temporary: string) => void } = {},
): void {
  const temporary = temporaryPath(path);
  try {
    using file = Deno.openSync(temporary, { write: true, createNew: true, mode: FILE_MODE });
    const parts = typeof data === "string"
      ? [new TextEncoder().encode(data)]
      : data instanceof Uint8Array
      ? [data]
      : data;
    for (const bytes of parts) {
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    }
    syncOpened(file, path);
    options.beforeRename?.(temporary);
    renameDurable(temporary, path);
  } catch (error) {
    removeQuietly(temporary); // gone once renamed
    throw error;
  }
}

/**
 * Replace `target` with a copy of `source` so that, killed at any instant, `target`
 * holds its old content or all of the new, never a mix and never nothing: copy to a
 * temporary file beside it, fsync, rename over it, fsync the folder. The copy keeps
 * the mode of the file it replaces, and its owner where this user may give files away
 * (the service's user must still open it);
 * the folder is created when missing. `target` is replaced at its own name, never through a symbolic link there (the
 * link itself would be replaced): the caller resolves the links it trusts. The temporary file is removed on failure.
 *
 * @param source Regular file to copy (not changed); a symbolic link or special file there is refused.
 * @param target File to replace or create.
 * @param beforeRename Called just before the rename (the last moment the old file has its name).
 * @param checkCopy Called with the SHA-256 of the bytes copied (hashed as they pass) before the rename; what it throws
 *   stops the replacement, the copy removed.
 */
export function replaceFileAtomic(
  source: string,
  target: string,
  beforeRename?: () => void,
  checkCopy?: (sha256: string) => void,
): void {
  const kind = notRegularFile(source);
  if (kind !== null && kind !== "missing") throw new NotRegularFileError(source, kind); // never copy through a link
  ensureDir(dirname(target));
  const previous = replacedLikeness(target);
  const temporary = temporaryPath(target);
  let made: { dev: number; ino: number };
  try {
    const copy = copyHashed(source, temporary);
    checkCopy?.(copy.sha256);
    made = settleOwnFile(temporary, copy, previous);
  } catch (error) {
    removeQuietly(temporary);
    throw error;
  }
  try {
    beforeRename?.();
    renameDurable(temporary, target);
  } catch (error) {
    removeIfMade(temporary, made); // not renamed: a copy the size of the file would stay beside it, unsaid
    throw error;
  }
  requireMade(target, made);
}

/** Remove the file at `path` when it is still the file `made`, never another put there since. */
function removeIfMade(path: string, made: { dev: number; ino: number }): void {
  const now = lstatOrNull(path);
  if (now?.isFile && now.dev === made.dev && now.ino === made.ino) removeFileQuietly(path);
}

/**
 * Refuse when what took the name `path` by a rename is not the file `made` (a writer of the folder swapped the
 * temporary for a link or a file of its own just before): the caller must not go on to open or write it.
 */
function requireMade(path: string, made: { dev: number; ino: number }): void {
  const now = lstatOrNull(path);
  if (now?.isFile && now.dev === made.dev && now.ino === made.ino) return;
  throw new NotRegularFileError(
    path,
    `not the copy put there: ${now === null ? "nothing" : kindOf(now)}, put in since`,
  );
}

/**
 * Replace `target` with the file `source` itself, as {@linkcode replaceFileAtomic} does with a copy, where both lie on
 * one filesystem: keep the replaced file's owner and mode, fsync `source`, rename it over `target`, fsync both
 * folders. For a scratch copy this run made and nothing else reads: it is gone from `source` after.
 *
 * @returns `false`, nothing changed, when the two are on different filesystems (the caller copies instead).
 */
export function moveFileAtomic(source: string, target: string, beforeRename?: () => void): boolean {
  const kind = notRegularFile(source);
  if (kind !== null) {
    throw kind === "missing" ? new Deno.errors.NotFound(source) : new NotRegularFileError(source, kind);
  }
  ensureDir(dirname(target));
  const previous = replacedLikeness(target);
  const made = Deno.lstatSync(source);
  if (Deno.statSync(dirname(target)).dev !== made.dev) return false;
  settleOwnFile(source, { dev: made.dev, ino: made.ino! }, previous);
  beforeRename?.();
  try {
    renameDurable(source, target);
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "EXDEV") return false; // two mounts of one disk
    throw error;
  }
  requireMade(target, { dev: made.dev, ino: made.ino! });
  return true;
}

/** The owner and mode a file put at a path takes (see {@linkcode replacedLikeness}); `null`: none. */
interface Likeness {
  uid: number | null;
  gid: number | null;
  mode: number | null;
}

/**
 * What a file put at `target` takes: the owner and mode of the file there, or with none its folder's owner, so that a
 * root restore of a missing database leaves the service's user one it can write.
 */
function replacedLikeness(target: string): Likeness | null {
  const previous = lstatOrNull(target);
  if (previous?.isFile) return previous;
  const folder = statOrNull(dirname(target));
  return folder === null ? null : { uid: folder.uid, gid: folder.gid, mode: null };
}

/**
 * Give the file this run made at `path` (`made`: device and inode) the owner and mode of the file it replaces
 * (`previous`, see {@linkcode replacedLikeness}), and fsync it: on the file opened, never through a link, and only that
 * file. A writer of the folder may swap the temporary for a link to root's file meanwhile: a chmod by path gave
 * `/etc/shadow` mode 644 that way.
 *
 * @returns `made`.
 * @throws {NotRegularFileError} when something else is at `path` now.
 */
function settleOwnFile<T extends { dev: number; ino: number }>(
  path: string,
  made: T,
  previous: Likeness | null,
): T {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const copy = fstatSync(fd);
    if (!copy.isFile() || copy.dev !== made.dev || copy.ino !== made.ino) {
      throw new NotRegularFileError(path, "replaced since it was made: another user's link or file");
    }
    if (previous?.uid != null && previous.gid !== null && (copy.uid !== previous.uid || copy.gid !== previous.gid)) {
      giveOpened(fd, previous.uid, previous.gid);
    }
    if (previous?.mode != null && (copy.mode & 0o7777) !== (previous.mode & 0o7777)) {
      fchmodSync(fd, previous.mode & 0o7777);
    }
    try {
      fsyncSync(fd);
    } catch (error) {
      throw namingPath(error, path);
    }
    return made;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ELOOP") throw new NotRegularFileError(path, "symbolic link");
    throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * Give what is open as `fd` (a file or a folder this run made) to `uid`:`gid`, by its descriptor, never a path; where
 * this user may not (not root), it stays this user's.
 */
export function giveOpened(fd: number, uid: number, gid: number): void {
  try {
    fchownSync(fd, uid, gid);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== "EPERM" && code !== "EACCES") throw error;
  }
}

/**
 * Check, before any work, that {@linkcode writeFileAtomic} can later write `path`: nothing but a regular file (or
 * nothing) is there, links followed, and a new file can be made beside it (one is made and removed at once).
 *
 * @throws the probe's OS error (`NotFound` for a missing folder, `PermissionDenied`, a read-only filesystem),
 *   `IsADirectory`, or {@linkcode NotRegularFileError} for a FIFO, socket or device.
 */
export function checkCanReplace(path: string): void {
  const info = statOrNull(path);
  if (info?.isDirectory) throw new Deno.errors.IsADirectory(`is a directory: ${path}`);
  if (info && !info.isFile) throw new NotRegularFileError(path, kindOf(info));
  const probe = temporaryPath(path);
  Deno.openSync(probe, { write: true, createNew: true }).close();
  Deno.removeSync(probe);
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

/**
 * Remove the temporaries ({@linkcode temporaryPath}) beside `path` that killed writers left (the caller holds the lock
 * that rules out a live one); the paths removed. Nothing is followed: a link there is removed as a link.
 */
export function removeTemporariesOf(path: string): string[] {
  const folder = dirname(path);
  const stale = entriesOrNone(folder).filter((entry) =>
    !entry.isDirectory && entry.name.startsWith(`.${basename(path)}.tmp-`) // a folder so named is not one of them
  ).map((entry) => join(folder, entry.name));
  for (const leftover of stale) removeFileQuietly(leftover);
  return stale;
}

/**
 * The mode of the folders this tool makes (less what the umask takes): never writable by others, whatever the umask, so
 * that no other user can change a snapshot or the tool's state.
 */
export const FOLDER_MODE = 0o755;

/** The mode of the files this tool writes whole (metadata, state, reports), less what the umask takes: see above. */
export const FILE_MODE = 0o644;

/**
 * Give `path` the permission bits of `source`, less any write permission for others: a copy of a live file or folder is
 * no more open to other users than it, and no other user can change it.
 */
export function copyModeFrom(source: string, path: string): void {
  Deno.chmodSync(path, copiedMode(source));
}

/** The permission bits a copy of `source` gets (see {@linkcode copyModeFrom}): its own, less write for others. */
export function copiedMode(source: string): number {
  return (Deno.statSync(source).mode ?? FOLDER_MODE) & FOLDER_MODE; // never writable by others, even if the source is
}

/**
 * Create a folder and its parents, fsyncing the folder that holds each one created
 * (and the parent of `path` even when nothing was created), so none of them vanishes in a crash.
 */
export function ensureDir(path: string): void {
  let highest = path;
  while (dirname(highest) !== highest && statOrNull(dirname(highest)) === null) highest = dirname(highest);
  Deno.mkdirSync(path, { recursive: true, mode: FOLDER_MODE });
  for (let folder = path;; folder = dirname(folder)) {
    syncDir(dirname(folder));
    if (folder === highest) break;
  }
}

/**
 * Fsync every file and folder below `root`, deepest first, then `root` itself.
 * Symbolic links are not followed.
 */
export function syncTree(root: string): void {
  for (const entry of listEntries(root)) {
    const path = join(root, entry.name);
    if (entry.isDirectory) syncTree(path);
    else if (entry.isFile) syncFile(path);
  }
  syncDir(root);
}

/**
 * Remove a path and all below it, ignoring that it may already be gone. A symbolic link at `path` or below it is
 * removed as a link, never followed; links among the folders above `path` are checked by {@linkcode removeInside}.
 */
export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * Remove the file (or link) at `path` if there is one, never a folder's contents: a folder where a file was expected
 * (a `-wal` that is a folder) fails instead of being emptied.
 */
export function removeFileQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * Start fsyncing a file on a runtime thread and return a function that waits for the
 * flush (throwing its error), so the disk writes while the main thread goes on
 * (copying Chroma, validating).
 */
export function syncFileLater(path: string): () => Promise<void> {
  const fd = openNonBlocking(path, true); // as syncFile
  const flushed = new Promise<{ error: unknown } | null>((resolve) =>
    fsync(fd, (error) => {
      closeSync(fd);
      resolve(error ? { error } : null);
    })
  );
  return async () => {
    const failure = await flushed;
    if (failure) throw namingPath(failure.error, path);
  };
}

/** A head-start flush of {@linkcode flushSoon} failed: the file at `path` may not be on disk. */
export class FlushFailedError extends Error {
  /** The failure `cause` of flushing `path`. */
  constructor(readonly path: string, cause: unknown) {
    super(`flushing ${path} to disk failed`, { cause });
    this.name = "FlushFailedError";
  }
}

/**
 * Start writing each of `paths` to disk on runtime threads, a head start for the fsyncs that later make them durable
 * (a restore validates the fetched files meanwhile); the function returned waits for it and throws the first failure
 * as a {@linkcode FlushFailedError}. It must: Linux reports a failed write-back once, to the file descriptions open
 * when it happened, so a later fsync through a new one would succeed over lost pages.
 */
export function flushSoon(paths: readonly string[]): () => Promise<void> {
  const queue = paths.values();
  const failures: FlushFailedError[] = [];
  const lane = async () => {
    for (const path of queue) {
      try {
        await syncFileLater(path)();
      } catch (error) {
        failures.push(new FlushFailedError(path, error));
      }
    }
  };
  // a descriptor each while it flushes: a Chroma of thousands of files, all at once, met the open-file limit (1024)
  const lanes = Promise.all(Array.from({ length: Math.min(FLUSHES_AT_ONCE, paths.length) }, lane));
  return async () => {
    await lanes;
    if (failures.length > 0) throw failures[0];
  };
}

/** The files {@linkcode flushSoon} flushes at once. */
const FLUSHES_AT_ONCE = 32;

/**
 * Head-start flushes of files being written (a fetch a restore makes durable next): once `every` bytes are written,
 * the files written since are flushed on runtime threads, one round at a time, so the disk writes while the writer
 * goes on and the final fsyncs find little left. The first failure is thrown by {@linkcode settled}, as in
 * {@linkcode flushSoon}.
 */
export class FlushAhead {
  private pending = 0;
  private readonly touched = new Set<string>();
  private round: Promise<void> | null = null;
  private failure: { error: unknown } | null = null;

  /** Flush after each `every` bytes written. */
  constructor(private readonly every: number) {}

  /** Note `bytes` written to the file at `path`; start a round when due and none runs. */
  wrote(path: string, bytes: number): void {
    this.touched.add(path);
    this.pending += bytes;
    if (this.pending < this.every || this.round !== null) return;
    const paths = [...this.touched];
    this.touched.clear();
    this.pending = 0;
    this.round = flushSoon(paths)().catch((error: FlushFailedError) => {
      this.failure ??= { error: error.cause };
    }).then(() => {
      this.round = null;
    });
  }

  /** Wait for the round running, if any; throw the first failure of any round (the OS error). */
  async settled(): Promise<void> {
    await this.round;
    if (this.failure) throw this.failure.error;
  }
}

/**
 * Remove `path` and all below it as {@linkcode removeQuietly} does, but only when it lies inside `root`, no folder
 * between `root` and `path` is a symbolic link (through one, the removal would happen wherever the link points), and
 * no filesystem is mounted at or below it (the removal would empty it).
 *
 * @throws {RefusedError} naming the link or the mount point (or `path`, when it is not inside `root`); nothing is
 *   removed.
 */
export function removeInside(root: string, path: string): void {
  const rest = relative(root, path);
  if (rest === "" || rest === ".." || rest.startsWith(`..${sep}`) || isAbsolute(rest)) {
    throw new RefusedError(`refusing to remove ${path}: it is not inside ${root}; please report this bug`);
  }
  let folder = root;
  for (const name of rest.split(sep).slice(0, -1)) {
    folder = join(folder, name);
    if (lstatOrNull(folder)?.isSymlink) {
      throw new RefusedError(
        `refusing to remove ${path}: ${folder} is a symbolic link, and the removal would follow it; ` +
          `nothing was removed; replace the link with a folder, then run again`,
      );
    }
  }
  const mounted = lstatOrNull(path)?.isDirectory ? mountPointsAt(path) ?? [] : [];
  if (mounted.length > 0) throw new MountPointError(path, mounted[0]);
  removeQuietly(path);
}

/** A removal refused because a filesystem is mounted at or below what it would remove. */
export class MountPointError extends RefusedError {
  /** The refusal to remove `path`, naming the mount point `mountPoint`. */
  constructor(path: string, readonly mountPoint: string) {
    super(
      `refusing to remove ${path}: ${mountPoint} is a mount point, and the removal would delete the files of the ` +
        `filesystem mounted there; nothing was removed; unmount it, then run again`,
    );
  }
}
