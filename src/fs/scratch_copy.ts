/**
 * A private copy of a file in the first temporary folder that takes it: `$TMPDIR`, then the system's usual ones,
 * so that one missing, read-only or full folder does not stop the work. Never beside the file copied. Its folder is
 * locked while it lives, so the copies that killed runs left (a database's size each) are told apart and removed.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError } from "../errors.ts";
import { removeQuietly } from "./durable.ts";
import { entriesOrNone, lstatOrNull } from "./probe.ts";
import { type LockedFolder, type LockedNames, makeLockedFolder, unlockedTooLong } from "./locked_folder.ts";
import { systemTempFolder } from "./system_temp.ts";
import { OpenedRegular } from "./opened_regular.ts";

/** The start of a copy's folder's name once it is locked. */
export const SCRATCH_COPY_PREFIX = "atocore-sqlite-";
/** The start of its name from being made until it is locked and renamed (`-` is in no name `makeTempDir` draws). */
const UNLOCKED_PREFIX = "atocore-sqlite-new-";
const NAMES = { prefix: SCRATCH_COPY_PREFIX, unlockedPrefix: UNLOCKED_PREFIX };

/** Folders tried after `$TMPDIR`, in order (not `/dev/shm`: Deno grants `/dev` only with every permission). */
export const FALLBACK_TEMPORARY_FOLDERS = ["/tmp", "/var/tmp"];

/** A private copy: its file, and the folder that holds it (to remove with it). */
export interface ScratchCopy extends Disposable {
  folder: string;
  file: string;
}

/** No temporary folder could take a copy: each folder tried, with why not. */
export class NoScratchSpaceError extends Error {
  /** `folder: reason` for each folder tried. */
  readonly tried: string[];
  /** Bytes the copy needed. */
  readonly bytes: number;

  /** Make the error from the folders tried and the size that did not fit. */
  constructor(bytes: number, tried: string[]) {
    super(`no writable temporary folder with ${bytes} bytes free (${tried.join("; ")})`);
    this.name = "NoScratchSpaceError";
    this.bytes = bytes;
    this.tried = tried;
  }
}

/** The temporary folders to try: the system's, then {@linkcode FALLBACK_TEMPORARY_FOLDERS}, each once. */
export function temporaryFolders(): string[] {
  return [...new Set([systemTempFolder(), ...FALLBACK_TEMPORARY_FOLDERS])];
}

/**
 * Copy the file at `path` into a new private folder in the first temporary folder where the copy succeeds; a
 * partial copy (disk full) is removed before the next folder is tried. Dispose of the result to remove it.
 *
 * @throws {NoScratchSpaceError} when no folder took the copy; as `OpenedRegular.open` when `path` is no regular file.
 */
export function scratchCopy(path: string, name: string): ScratchCopy {
  using source = OpenedRegular.open(path, { followLinks: true }); // never waiting on a FIFO swapped in since a look
  const bytes = source.statSync().size;
  const tried: string[] = [];
  for (const parent of temporaryFolders()) {
    let held: LockedFolder | null = null;
    try {
      held = lockedScratchFolder(parent, NAMES);
      const file = join(held.path, name);
      copyOpened(source, file);
      const made = held;
      return { folder: made.path, file, [Symbol.dispose]: () => made[Symbol.dispose]() };
    } catch (error) {
      if (held !== null) removeOrLeave(held);
      tried.push(`${parent}: ${describeOsError(error)}`);
    }
  }
  throw new NoScratchSpaceError(bytes, tried);
}

/** Copy the whole of `source` into the new file `file`, a mebibyte at a time. */
function copyOpened(source: OpenedRegular, file: string): void {
  source.seekSync(0, Deno.SeekMode.Start);
  using to = Deno.openSync(file, { write: true, createNew: true });
  const buffer = new Uint8Array(1 << 20);
  for (let read = source.readSync(buffer); read !== null; read = source.readSync(buffer)) {
    for (let done = 0; done < read;) done += to.writeSync(buffer.subarray(done, read));
  }
}

/**
 * A new private folder in `parent` named by `names`, locked while it lives (see `locked_folder.ts`), once the folders of
 * those names that killed runs of this user left there are removed: each a database's size, never removed otherwise.
 */
export function lockedScratchFolder(parent: string, names: LockedNames): LockedFolder {
  const held = makeLockedFolder(parent, names, lockOrNot);
  try {
    removeKilledCopies(parent, held.path, names);
  } catch (error) {
    held[Symbol.dispose]();
    throw error;
  }
  return held;
}

/**
 * Lock the new folder. Where the filesystem keeps no locks it stays unlocked: a run removing leftovers cannot try its
 * lock either and so leaves it, as before copies were locked.
 */
function lockOrNot(holder: Deno.FsFile): void {
  try {
    holder.lockSync(true);
  } catch {
    // see above: never taken for a leftover
  }
}

/**
 * Remove the copies in `parent` that killed runs of the user who owns `own` (the folder just made) left: folders of a
 * copy's name that no run holds locked, of the unlocked name too once `unlockedTooLong`. Another user's, a link, or
 * one whose lock cannot be tried is left as it is.
 */
function removeKilledCopies(parent: string, own: string, names: LockedNames): void {
  const me = Deno.lstatSync(own).uid; // Deno.uid() would need --allow-sys
  for (const entry of entriesOrNone(parent)) {
    if (!entry.isDirectory || !entry.name.startsWith(names.prefix)) continue;
    const path = join(parent, entry.name);
    const info = lstatOrNull(path);
    if (path === own || info === null || !info.isDirectory || info.uid !== me) continue;
    if (entry.name.startsWith(names.unlockedPrefix) && !unlockedTooLong(info)) continue;
    if (noneHolds(path)) removeOrLeave(path);
  }
}

/** Whether no run holds the folder at `path` locked (`false` when it cannot be opened or its lock cannot be tried). */
function noneHolds(path: string): boolean {
  let probe: Deno.FsFile;
  try {
    probe = Deno.openSync(path, { read: true });
  } catch {
    return false;
  }
  try {
    return probe.tryLockSync(true); // released as the probe closes
  } catch {
    return false; // a filesystem that keeps no locks: left, as a copy in use would be
  } finally {
    probe.close();
  }
}

/** Remove a partial or left copy; one that cannot be removed is left (the next folder is tried all the same). */
function removeOrLeave(what: string | LockedFolder): void {
  try {
    if (typeof what === "string") removeQuietly(what);
    else what[Symbol.dispose]();
  } catch {
    // left in a temporary folder, which the system clears
  }
}
