/**
 * Removing a whole snapshot or `failed/` entry from the backup folder: renamed into `.trash/` first (never listed
 * half), then deleted there; refused, untouched, when a filesystem is mounted at or below it.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { describeOsError } from "../errors.ts";
import { removeInside } from "../fs/durable.ts";
import { removeHeld } from "../fs/held_remove.ts";
import { moveBetweenFolders } from "../fs/move_between.ts";
import { isDirectory } from "../fs/probe.ts";
import { UnnamableEntryError } from "../fs/tree.ts";
import { trashDir, trashRoot } from "../snapshot/layout.ts";
import { folderCalls } from "../sys/folder_calls.ts";
import { mountPointsAt } from "../sys/mounts.ts";

/** What removing one entry did: whether it left its folder, and the error line when something failed. */
export interface RemovalOutcome {
  gone: boolean;
  error?: string;
}

/**
 * Move `source` (in the folder `from`, such as `snapshots/`, named `label` in messages) into `.trash/` durably, then
 * delete it. The deletion needs no fsync: what a crash leaves in `.trash/` is never listed, and the next create or
 * cleanup removes it. A link is moved, never followed.
 */
export function removeViaTrash(
  backupDir: string,
  source: string,
  stamp: string,
  from: string,
  label: string,
): RemovalOutcome {
  const trash = trashDir(backupDir, stamp);
  try {
    const mounted = isDirectory(source) ? mountPointsAt(source) ?? [] : [];
    if (mounted.length > 0) {
      return {
        gone: false,
        error: `${label}: ${mounted[0]} is a mount point, and removing ${source} would delete the files of the ` +
          "filesystem mounted there; it is untouched; unmount it and run cleanup again",
      };
    }
    moveToTrash(backupDir, source, trash);
  } catch (error) {
    return {
      gone: false,
      error: `${label}: could not move ${source} out of ${from}: ${describeOsError(error)}; it is untouched, fix ` +
        "that and run cleanup again",
    };
  }
  try {
    removeFromTrash(backupDir, trash);
  } catch (error) {
    const fix = error instanceof UnnamableEntryError
      ? "a name that is not UTF-8: remove that entry by hand, ls -b shows its bytes"
      : "an immutable file, lsattr -R shows it; another owner's file: remove it as that owner or root";
    return {
      gone: true,
      error: `${label}: moved out of ${from} (no longer a snapshot) but not removed from ${trash}: ` +
        `${describeOsError(error)}; the next create or cleanup tries again, once what kept it is fixed (${fix})`,
    };
  }
  return { gone: true };
}

/**
 * Move `source` (an entry of a folder of the backup folder) to `trash` durably, by name between that folder and
 * `.trash` (made when missing), each opened from the backup folder without following a link at its name: a writer who
 * swaps either for a link after the checks gets a refusal, and nothing is moved into or out of the link's target.
 * Without libc's calls, by path.
 */
function moveToTrash(backupDir: string, source: string, trash: string): void {
  if (dirname(trash) !== trashRoot(backupDir)) {
    throw new RangeError(`${trash} is not in ${trashRoot(backupDir)}; please report this bug`);
  }
  moveBetweenFolders(dirname(trashRoot(backupDir)), source, trash);
}

/**
 * Remove `trash` inside `.trash` opened without following a link at its name, so a writer who swaps `.trash` for a
 * link meanwhile cannot send the removal into its target; without libc's calls, by path ({@linkcode removeInside}).
 */
function removeFromTrash(backupDir: string, trash: string): void {
  const calls = folderCalls();
  if (calls === null) return removeInside(backupDir, trash);
  const fd = calls.openFolderNoFollow(dirname(trash));
  try {
    removeHeld(calls, fd, basename(trash), trash);
  } finally {
    calls.close(fd);
  }
}
