/**
 * Recovery of what an interrupted run left behind: staging and trash folders. Called only while holding the
 * operation lock; nothing here touches `snapshots/`.
 *
 * @module
 */
import { join } from "node:path";
import { removeInside, syncDir } from "../fs/durable.ts";
import { entriesOrNone } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { stagingRoot, trashRoot } from "../snapshot/layout.ts";
import { requireOwnFolders } from "./own_folders.ts";

/**
 * Remove leftover staging and trash folders of runs that died, reporting each one, after checking that the tool's
 * own folders are plain folders ({@linkcode requireOwnFolders}): through a link, clearing would delete where it points.
 *
 * @returns The paths removed.
 * @throws {UsageError} when `snapshots`, `.staging`, `.trash` or `failed` is a link, not a folder, or another
 * filesystem; nothing is removed.
 */
export function removeLeftovers(backupDir: string, reporter: Reporter): string[] {
  requireOwnFolders(backupDir);
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
