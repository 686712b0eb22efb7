/**
 * Recovery of what an interrupted run left behind: staging and trash folders.
 *
 * Called only while holding the operation lock, when no other operation can be
 * using them. Nothing here touches `snapshots/`.
 *
 * @module
 */
import { join } from "node:path";
import { removeQuietly, syncDir } from "../fs/durable.ts";
import { entriesOrNone } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { stagingRoot, trashRoot } from "../snapshot/layout.ts";

/**
 * Remove leftover staging and trash folders of runs that died, reporting each one.
 *
 * @returns The paths removed.
 */
export function removeLeftovers(backupDir: string, reporter: Reporter): string[] {
  const removed: string[] = [];
  for (const root of [stagingRoot(backupDir), trashRoot(backupDir)]) {
    const names = entriesOrNone(root).map((entry) => entry.name);
    for (const name of names) {
      const path = join(root, name);
      removeQuietly(path);
      removed.push(path);
      reporter.event("warning", "stale_leftover_removed", { path });
    }
    if (names.length) syncDir(root);
  }
  return removed;
}
