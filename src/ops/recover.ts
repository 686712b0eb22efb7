/**
 * Recovery of what an interrupted run left behind: staging and trash folders. Called only while holding the
 * operation lock; nothing here touches `snapshots/`.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError, ToolError } from "../errors.ts";
import { MountPointError, removeInside, syncDir } from "../fs/durable.ts";
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
      try {
        removeInside(backupDir, path);
      } catch (error) {
        if (error instanceof MountPointError) {
          reporter.event("warning", "stale_leftover_kept", {
            path,
            error: `${error.mountPoint} is a mount point, which a removal would empty`,
            next: "unmount it; the next create or cleanup removes the rest",
          });
          continue;
        }
        if (error instanceof ToolError) throw error; // a link on the way: refused, nothing removed
        // another user's leftover, or an immutable one: it is never listed, and must not stop every run from now on
        reporter.event("warning", "stale_leftover_kept", {
          path,
          error: describeOsError(error),
          next: "remove it by hand (as its owner, or as root)",
        });
        continue;
      }
      removed.push(path);
      reporter.event("warning", "stale_leftover_removed", { path });
    }
    if (names.length) syncDir(root);
  }
  return removed;
}
