/**
 * What killed runs left beside the live database (a restore's temporaries: the copy it was writing, the link it kept
 * to the old database; a fetch's scratch folder), removed by the next live restore before it writes anything.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { Config } from "../config.ts";
import { describeOsError, OperationError } from "../errors.ts";
import { removeQuietly } from "../fs/durable.ts";
import { unlockedTooLong } from "../fs/locked_folder.ts";
import { fileIdentity } from "../fs/file_identity.ts";
import { entriesOrNone, isDirectory, lstatOrNull, statOrNull } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { snapshotDir } from "../snapshot/layout.ts";
import type { RestoreIntent } from "./restore_intent.ts";
import type { Change } from "./restore_wal.ts";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";

/** The start of a fetch's scratch folder's name. */
export const SCRATCH_PREFIX = ".atocore-fetch-";
/** The start of its name from being made until it is locked and renamed to {@linkcode SCRATCH_PREFIX}'s. */
export const UNLOCKED_SCRATCH_PREFIX = ".atocore-fetching-";

/**
 * What killed runs left beside the live database that may go before anything is written (and so count as freed):
 * fetches' scratch folders no fetch holds, and the temporaries of restores where none is the only copy of the old
 * database. One is when it is the live database itself (killed before the rename), or when the unfinished restore's
 * pre-restore snapshot, which holds that database, exists; without a record, no live restore got as far as replacing
 * the database. The others are left to the replacement, which removes them as a finished restore removes its own.
 */
export function databaseLeftovers(config: Config, unfinished: RestoreIntent | null): string[] {
  const db = config.db.path;
  const live = statOrNull(db);
  const pre = unfinished?.pre_restore_snapshot ?? null;
  const kept = pre !== null && isDirectory(snapshotDir(unfinished!.backup_dir, pre));
  const temporaries = entriesOrNone(dirname(db))
    .filter((entry) => !entry.isDirectory && entry.name.startsWith(`.${basename(db)}.tmp-`))
    .map((entry) => join(dirname(db), entry.name))
    .filter((path) => {
      const info = lstatOrNull(path);
      const sameAsLive = info !== null && live !== null && fileIdentity(info) === fileIdentity(live);
      return unfinished === null || kept || sameAsLive || !info?.isFile;
    });
  return [...temporaries, ...killedScratch(dirname(db))];
}

/**
 * The step that removes `paths` (see {@linkcode databaseLeftovers}) before anything is staged or written; each named
 * (`stale_leftover_removed`) and noted.
 */
export function leftoversStep(
  config: Config,
  paths: readonly string[],
  reporter: Reporter,
): { doing: string; run: (changes: Change[]) => void } {
  return {
    doing: `removing what killed runs left beside the database ${config.db.path}`,
    run: (changes) => {
      for (const path of paths) {
        removeQuietly(path);
        reporter.event("warning", "stale_leftover_removed", { path });
      }
      if (paths.length > 0) changes.push({ what: `removed what killed runs left: ${paths.join(", ")}` });
    },
  };
}

/** Remove the scratch folders in `parent` that no fetch holds locked (a killed fetch left them). */
export function removeKilledScratch(parent: string, reporter: Reporter): void {
  for (const path of killedScratch(parent)) {
    removeQuietly(path);
    reporter.event("warning", "stale_leftover_removed", { path });
  }
}

/**
 * The scratch folders in `parent` that no fetch holds locked: a killed fetch left them; and those not yet locked and
 * renamed once `unlockedTooLong` (a fetch killed, or failing, in between): one being made now is not taken.
 */
function killedScratch(parent: string): string[] {
  const now = Date.now();
  const calls = folderCalls();
  const me = calls?.user();
  const held = calls === null ? null : openedOrNull(calls, parent);
  try {
    return killedIn(
      parent,
      now,
      me,
      (path) => calls === null || held === null ? unlockedByPath(path) : unlocked(calls, held, path),
    );
  } finally {
    if (held !== null) calls!.close(held);
  }
}

function openedOrNull(calls: FolderCalls, folder: string): number | null {
  try {
    return calls.openFolder(folder);
  } catch {
    return null;
  }
}

/** Of the entries of `parent`, the scratch folders of this user (`me`, when known) that `isUnlocked` lets go. */
function killedIn(
  parent: string,
  now: number,
  me: number | undefined,
  isUnlocked: (path: string) => boolean,
): string[] {
  return entriesOrNone(parent).filter((entry) => entry.isDirectory)
    .map((entry) => join(parent, entry.name))
    .filter((path) => {
      const name = basename(path);
      const info = lstatOrNull(path);
      if (info === null || (me !== undefined && info.uid !== me)) return false; // another user's (a shared /tmp)
      if (name.startsWith(UNLOCKED_SCRATCH_PREFIX)) {
        if (!unlockedTooLong(info, now)) return false;
      } else if (!name.startsWith(SCRATCH_PREFIX)) return false;
      return isUnlocked(path);
    });
}

/** Whether no fetch holds the scratch folder at `path` locked: opened as a folder, never through a link or a FIFO. */
function unlocked(calls: FolderCalls, parent: number, path: string): boolean {
  let fd: number;
  try {
    fd = calls.openFolder(basename(path), { fd: parent, shown: path });
  } catch {
    return false; // gone meanwhile, not a folder now, or not ours to open
  }
  try {
    return calls.tryLock(fd, path); // released as it closes
  } catch (error) {
    throw lockFailed(path, describeOsError(error), error);
  } finally {
    calls.close(fd);
  }
}

/** {@linkcode unlocked} without FFI: a folder opened by its path, only where it was a folder a moment before. */
function unlockedByPath(path: string): boolean {
  let probe: Deno.FsFile;
  try {
    probe = Deno.openSync(path, { read: true });
  } catch {
    return false; // gone meanwhile, or not ours to open
  }
  try {
    return probe.tryLockSync(true); // released as the probe closes
  } catch (error) {
    // Deno names no call or path for a failure on an open file; worded as FolderCalls' (and Deno's path calls) are
    throw lockFailed(path, `${describeOsError(error)}: flock '${path}'`, error);
  } finally {
    probe.close();
  }
}

/**
 * Why a leftover scratch folder cannot be told from one a fetch uses: its lock failed for another reason than a fetch
 * holding it (`why`; ENOLCK: a filesystem that keeps no locks). Taken for held, it would stay, unsaid, run after run.
 */
function lockFailed(path: string, why: string, cause: unknown): OperationError {
  return new OperationError(
    `cannot tell whether a fetch still uses the scratch folder ${path}: locking it failed (${why}); nothing was ` +
      "changed; if no fetch is running, remove that folder, then run again (a fetch needs a filesystem that keeps " +
      "locks: give --scratch-dir DIR on one)",
    { cause },
  );
}
