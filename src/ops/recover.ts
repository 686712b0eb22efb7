/**
 * Recovery of what an interrupted run left behind: staging and trash folders; and the check, first, that the tool's
 * own folders in the backup folder are real folders, never links out of it.
 *
 * Called only while holding the operation lock, when no other operation can be
 * using them. Nothing here touches `snapshots/`.
 *
 * @module
 */
import { join } from "node:path";
import { RefusedError } from "../errors.ts";
import { removeInside, syncDir } from "../fs/durable.ts";
import { entriesOrNone, lstatOrNull } from "../fs/probe.ts";
import { kindOf } from "../fs/regular_file.ts";
import type { Reporter } from "../report/reporter.ts";
import { failedRoot, stagingRoot, trashRoot } from "../snapshot/layout.ts";

/**
 * Remove leftover staging and trash folders of runs that died, reporting each one, after
 * {@linkcode requireRealInternalFolders}.
 *
 * @returns The paths removed.
 * @throws {RefusedError} when `.staging`, `.trash` or `failed` is a symbolic link or not a folder; nothing is removed.
 */
export function removeLeftovers(backupDir: string, reporter: Reporter): string[] {
  requireRealInternalFolders(backupDir);
  const removed: string[] = [];
  for (const root of [stagingRoot(backupDir), trashRoot(backupDir)]) {
    const names = entriesOrNone(root).map((entry) => entry.name);
    for (const name of names) {
      const path = join(root, name);
      removeInside(backupDir, path);
      removed.push(path);
      reporter.event("warning", "stale_leftover_removed", { path });
    }
    if (names.length) syncDir(root);
  }
  return removed;
}

/**
 * Refuse when one of the folders the tool builds, removes and sets snapshots aside in (`.staging`, `.trash`,
 * `failed`) is a symbolic link or something other than a folder: through a link, clearing leftovers would delete
 * wherever it points, and snapshots would be built or set aside outside the backup folder. Missing ones are fine
 * (they are made when needed).
 *
 * @throws {RefusedError} naming the folder and what to do.
 */
export function requireRealInternalFolders(backupDir: string): void {
  for (const folder of [stagingRoot(backupDir), trashRoot(backupDir), failedRoot(backupDir)]) {
    const info = lstatOrNull(folder);
    if (info === null || info.isDirectory) continue;
    const what = info.isSymlink
      ? `a symbolic link (to ${Deno.readLinkSync(folder)})`
      : `a ${kindOf(info)}, not a folder`;
    throw new RefusedError(
      `${folder} is ${what}; the tool keeps its own folders inside the backup folder and never works through ` +
        `a link there (clearing it would delete what it points to); nothing was changed; ` +
        `move it away and let the tool make a real folder, then run again`,
    );
  }
}
