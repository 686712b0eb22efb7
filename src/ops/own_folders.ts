/**
 * The backup folder's own folders (`snapshots/`, `.staging/`, `.trash/`, `failed/`) must be plain folders on the
 * backup folder's filesystem: snapshots move between them by rename, which cannot cross filesystems (EXDEV) and
 * must not go through a symbolic link to somewhere else.
 *
 * @module
 */
import { kindOf } from "../fs/regular_file.ts";
import { describeOsError, UsageError } from "../errors.ts";
import { lstatOrNull, statOrNull, statThroughFilesOrNull } from "../fs/probe.ts";
import { failedRoot, snapshotsDir, stagingRoot, trashRoot } from "../snapshot/layout.ts";

/**
 * Refuse a backup folder whose own folders are links or other filesystems, before anything is written there.
 *
 * @throws {UsageError} naming the folder, what it is, and what to do instead.
 */
export function requireOwnFolders(backupDir: string): void {
  const problem = ownFolderProblem(backupDir);
  if (problem) throw new UsageError(problem);
}

/** The refusal of a backup folder path that `error` (from a stat or an open under it) says cannot be reached. */
export function unreachableFolder(backupDir: string, error: unknown): string {
  const why = error instanceof Deno.errors.NotADirectory ? "a part of its path is a file" : describeOsError(error);
  return `the backup folder ${backupDir} cannot be reached (${why}); point --backup-dir (ATOCORE_BACKUP_DIR) at ` +
    `a folder this user can reach; nothing was done`;
}

/** The refusal of a backup folder path where something else than a folder is (`info`, links followed). */
export function notAFolder(backupDir: string, info: Deno.FileInfo): string {
  return `the backup folder ${backupDir} is a ${kindOf(info)}, not a folder; point --backup-dir ` +
    `(ATOCORE_BACKUP_DIR) at a folder; nothing was done`;
}

/**
 * The refusal of a backup folder whose `snapshots` is there but no folder (links followed), or `null`: a command that
 * only reads would otherwise say there are no snapshots, and the `create` it printed would be refused for it.
 */
export function snapshotsNotAFolder(backupDir: string): string | null {
  const path = snapshotsDir(backupDir);
  const info = statThroughFilesOrNull(path);
  if (info === null || info.isDirectory) return null;
  return `${path} is a ${kindOf(info)}, not a folder: snapshots are kept in that folder; move it aside and make it a ` +
    "plain folder, or point --backup-dir (ATOCORE_BACKUP_DIR) at the backup folder meant; nothing was done";
}

/**
 * The first of the backup folder's own folders that is a symbolic link or a mount of another filesystem, as a
 * one-line message naming it and the fix; `null` when there is none (folders not made yet are fine).
 */
export function ownFolderProblem(backupDir: string): string | null {
  let home: Deno.FileInfo | null;
  try {
    home = statOrNull(backupDir);
  } catch (error) {
    return unreachableFolder(backupDir, error);
  }
  if (home === null) return null;
  if (!home.isDirectory) return notAFolder(backupDir, home);
  for (const folder of [snapshotsDir, stagingRoot, trashRoot, failedRoot].map((path) => path(backupDir))) {
    const info = lstatOrNull(folder);
    if (info === null) continue;
    const what = info.isSymlink
      ? `a symbolic link (to ${Deno.readLinkSync(folder)})`
      : !info.isDirectory
      ? `a ${kindOf(info)}, not a folder`
      : info.dev !== home.dev
      ? "on another filesystem than the backup folder (a mount point)"
      : null;
    if (what === null) continue;
    return `${folder} is ${what}: snapshots are staged, published and removed by renames inside the backup folder, ` +
      `which cannot cross filesystems and never go through a link; make it a plain folder, or to keep snapshots ` +
      `on another disk, point --backup-dir (ATOCORE_BACKUP_DIR) at a folder on that disk`;
  }
  return null;
}
