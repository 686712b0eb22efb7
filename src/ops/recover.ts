/**
 * Recovery of what an interrupted run left behind: staging and trash folders. Called only while holding the
 * operation lock; nothing here touches `snapshots/`.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError, ToolError, UsageError } from "../errors.ts";
import { MountPointError, removeInside, syncDir } from "../fs/durable.ts";
import { removeHeld } from "../fs/held_remove.ts";
import { entriesOrNone } from "../fs/probe.ts";
import { UnnamableEntryError } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { stagingRoot, trashRoot } from "../snapshot/layout.ts";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";
import { mountPointsAt } from "../sys/mounts.ts";
import { runUser } from "../sys/run_user.ts";
import { requireOwnFolders } from "./own_folders.ts";

/**
 * Remove leftover staging and trash folders of runs that died, reporting each one, after checking that the tool's
 * own folders are plain folders ({@linkcode requireOwnFolders}): through a link, clearing would delete where it points.
 * Each is listed and removed inside `.staging` or `.trash` held open (never through a link put there since); without
 * libc's calls, by path only where no other user may write the backup folder (who could swap one for a link).
 *
 * @returns The paths removed.
 * @throws {UsageError} when `snapshots`, `.staging`, `.trash` or `failed` is a link, not a folder, or another
 * filesystem; nothing is removed.
 */
export function removeLeftovers(backupDir: string, reporter: Reporter): string[] {
  requireOwnFolders(backupDir);
  const calls = folderCalls();
  const removed: string[] = [];
  for (const root of [stagingRoot(backupDir), trashRoot(backupDir)]) {
    if (calls !== null) removeHeldLeftovers(calls, root, reporter, removed);
    else if (othersMayWrite(backupDir)) keepAll(backupDir, root, reporter);
    else removeLeftoversByPath(backupDir, root, reporter, removed);
  }
  return removed;
}

/** Remove each entry of the folder `root`, held open: a link at `root` now is refused, one below is removed as a link. */
function removeHeldLeftovers(calls: FolderCalls, root: string, reporter: Reporter, removed: string[]): void {
  let fd: number;
  try {
    fd = calls.openFolderNoFollow(root);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") return;
    if (code !== "ELOOP" && code !== "ENOTDIR") throw error;
    throw new UsageError(
      `${root} became a symbolic link or a file after it was checked; nothing was removed through it; make it a ` +
        "plain folder, then run again",
    );
  }
  try {
    const names = calls.names(fd, root);
    for (const name of names) {
      const path = join(root, name);
      try {
        const mounted = calls.entry(fd, name, path)?.isDirectory ? mountPointsAt(path) ?? [] : [];
        if (mounted.length > 0) throw new MountPointError(path, mounted[0]);
        if (!removeHeld(calls, fd, name, path)) continue;
      } catch (error) {
        reportKept(path, error, reporter);
        continue;
      }
      removed.push(path);
      reporter.event("warning", "stale_leftover_removed", { path });
    }
    if (names.length) calls.syncNow(fd, root);
  } finally {
    calls.close(fd);
  }
}

/** Whether a user other than this run's may write the backup folder (rename `.staging` and put a link there). */
function othersMayWrite(backupDir: string): boolean {
  const info = Deno.statSync(backupDir);
  return info.uid !== runUser() || ((info.mode ?? 0) & 0o022) !== 0;
}

/** Without libc's calls, where another user could swap `root` for a link meanwhile: each leftover is kept, named. */
function keepAll(backupDir: string, root: string, reporter: Reporter): void {
  for (const { name } of entriesOrNone(root)) {
    reporter.event("warning", "stale_leftover_kept", {
      path: join(root, name),
      error: `libc's calls do not load (no FFI permission), and another user may write ${backupDir}, who could ` +
        "swap the folder for a link while it is removed by path",
      next: "run with --allow-ffi (as the release binary does), or remove it by hand",
    });
  }
}

/** Remove each entry of `root` by path, each checked for links on the way ({@linkcode removeInside}). */
function removeLeftoversByPath(backupDir: string, root: string, reporter: Reporter, removed: string[]): void {
  const names = entriesOrNone(root).map((entry) => entry.name);
  for (const name of names) {
    const path = join(root, name);
    try {
      removeInside(backupDir, path);
    } catch (error) {
      reportKept(path, error, reporter);
      continue;
    }
    removed.push(path);
    reporter.event("warning", "stale_leftover_removed", { path });
  }
  if (names.length) syncDir(root);
}

/**
 * Report the leftover at `path` that `error` kept: a mount point in it, another user's or an immutable one (which must
 * not stop every run from now on). A refusal (a link on the way) is thrown: nothing more is removed.
 */
function reportKept(path: string, error: unknown, reporter: Reporter): void {
  if (error instanceof MountPointError) {
    reporter.event("warning", "stale_leftover_kept", {
      path,
      error: `${error.mountPoint} is a mount point, which a removal would empty`,
      next: "unmount it; the next create or cleanup removes the rest",
    });
    return;
  }
  if (error instanceof ToolError) throw error;
  if (error instanceof UnnamableEntryError) {
    reporter.event("warning", "stale_leftover_kept", {
      path,
      error: `${error.path} has a name that is not UTF-8, which this tool cannot name to remove`,
      next: "remove it by hand (ls -b shows its bytes)",
    });
    return;
  }
  reporter.event("warning", "stale_leftover_kept", {
    path,
    error: describeOsError(error),
    next: "remove it by hand (as its owner, or as root; an immutable file, which lsattr -R shows, after chattr -i)",
  });
}
