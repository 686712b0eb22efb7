/**
 * Replacing the contents of a Chroma folder while keeping the folder (a bind mount in production): a copy staged
 * inside it, swapped in by renames, after clearing what killed restores left there.
 *
 * @module
 */
import { basename, join } from "node:path";
import { describeOsError } from "../errors.ts";
import { ensureDir, removeQuietly, syncDir, syncTree } from "../fs/durable.ts";
import { exists } from "../fs/probe.ts";
import { copyEntries, type CopyTotals, type TreeEntry, walkTree } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";

/** A full Chroma copy staged in a hidden folder inside the target folder. */
export interface StagedChroma {
  folder: string;
  totals: CopyTotals;
}

/**
 * Copy the snapshot's Chroma folder into a hidden folder inside `target` (created
 * when missing, never removed), owned like `target`, fsynced. Leftovers of killed
 * restores (staged copies and old entries moved aside) are removed first; a copy
 * that fails part way is removed. `noteChange` hears, as they are made, the changes
 * that stay in `target` when a later step fails: the folder created, leftovers removed.
 */
export function stageChroma(
  source: string,
  target: string,
  reporter: Reporter,
  noteChange: (what: string) => void,
): StagedChroma {
  if (!exists(target)) {
    ensureDir(target);
    noteChange(`created the empty Chroma folder ${target}`);
  }
  const removed = clearLeftovers(target, reporter);
  if (removed > 0) noteChange(`removed ${removed} leftover(s) of a killed restore from ${target}`);
  const folder = join(target, `${CHROMA_STAGING_PREFIX}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  Deno.mkdirSync(folder);
  try {
    const entries = walkTree(source);
    const totals = copyEntries(
      source,
      folder,
      entries,
      (done, total) => reporter.progress("chroma bytes", done, total),
    );
    ownLike(folder, entries, Deno.statSync(target));
    syncTree(folder);
    reporter.event("info", "restore_chroma_staged", { path: folder, ...totals });
    return { folder, totals };
  } catch (error) {
    removeQuietly(folder); // a partial copy would keep a full disk full
    throw error;
  }
}

/**
 * Remove what killed restores left in `target`: staged copies and old entries moved aside (the lock rules out a
 * live restore); how many.
 */
function clearLeftovers(target: string, reporter: Reporter): number {
  let removed = 0;
  for (const entry of Deno.readDirSync(target)) {
    if (!entry.name.startsWith(CHROMA_STAGING_PREFIX) && !entry.name.startsWith(CHROMA_OLD_PREFIX)) continue;
    removeQuietly(join(target, entry.name));
    removed += 1;
    reporter.event("warning", "stale_leftover_removed", { path: join(target, entry.name) });
  }
  return removed;
}

/**
 * Give the copied entries the Chroma folder's owner, so the service's user can
 * still write them. Symbolic links keep the copier's owner (they are never followed);
 * a user who may not give files away keeps them.
 */
function ownLike(root: string, entries: TreeEntry[], folder: Deno.FileInfo): void {
  if (folder.uid === null || folder.gid === null) return;
  for (const entry of entries) {
    if (entry.kind !== "file" && entry.kind !== "dir") continue;
    const path = join(root, entry.path);
    const info = Deno.statSync(path);
    if (info.uid === folder.uid && info.gid === folder.gid) continue;
    try {
      Deno.chownSync(path, folder.uid, folder.gid);
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied) return;
      throw error;
    }
  }
}

/**
 * Swap the contents of `target` for the staged ones with renames only (instant, on
 * one filesystem): move every old entry into a hidden folder beside the staged one,
 * move the staged entries in, fsync, and only then remove the old entries. `target`
 * itself is kept. Old entries that cannot be removed are a warning, not a failure:
 * the swap is done, and the next restore removes them.
 */
export function swapChroma(staged: StagedChroma, target: string, reporter: Reporter): void {
  const stagedName = basename(staged.folder);
  const old = join(target, `${CHROMA_OLD_PREFIX}${stagedName.slice(CHROMA_STAGING_PREFIX.length)}`);
  const oldNames = [...Deno.readDirSync(target)].map((entry) => entry.name).filter((name) => name !== stagedName);
  Deno.mkdirSync(old);
  for (const name of oldNames) Deno.renameSync(join(target, name), join(old, name));
  for (const entry of [...Deno.readDirSync(staged.folder)]) {
    Deno.renameSync(join(staged.folder, entry.name), join(target, entry.name));
  }
  syncDir(target);
  Deno.removeSync(staged.folder);
  try {
    removeQuietly(old);
  } catch (error) {
    reporter.event("warning", "restore_old_chroma_not_removed", { path: old, error: describeOsError(error) });
  }
  syncDir(target);
}
