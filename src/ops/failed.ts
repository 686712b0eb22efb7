/**
 * `failed/`: snapshots that failed their post-backup validation, kept aside for inspection. Cleanup bounds it
 * (the newest few are kept), so a store that fails every night cannot fill the backup disk.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError } from "../errors.ts";
import { ensureDir, removeQuietly, renameDurable } from "../fs/durable.ts";
import { folderNames, isDirectory } from "../fs/probe.ts";
import { failedRoot, trashDir, trashRoot } from "../snapshot/layout.ts";
import { isStamp, parseStamp } from "../snapshot/stamp.ts";

/** How many `failed/` entries cleanup keeps unless told otherwise (`--keep-failed`). */
export const DEFAULT_KEEP_FAILED = 2;

/** One folder under `failed/`. */
export interface FailedEntry {
  /** Its name: the stamp of the run that made it, a dot and a unique suffix. */
  name: string;
  path: string;
  /** The stamp its name starts with, or `null` for a name this tool did not make (never removed). */
  stamp: string | null;
}

/** A `failed/` entry whose name carries the stamp of the run that made it. */
export type StampedFailedEntry = FailedEntry & { stamp: string };

/** The folders under `<backup>/failed/`, sorted by name (so oldest stamp first). */
export function failedEntries(backupDir: string): FailedEntry[] {
  return folderNames(failedRoot(backupDir)).map((name) => {
    const stamp = name.split(".")[0];
    return { name, path: join(failedRoot(backupDir), name), stamp: isStamp(stamp) ? stamp : null };
  });
}

/**
 * Which entries cleanup keeps and which it removes: the newest `keep` entries that carry a stamp go on being kept,
 * older ones go; entries without a stamp are never removed.
 */
export function failedRetention(
  entries: FailedEntry[],
  keep: number,
): { keep: FailedEntry[]; remove: StampedFailedEntry[] } {
  const stamped = entries.filter((entry): entry is StampedFailedEntry => entry.stamp !== null);
  const remove = stamped.slice(0, Math.max(0, stamped.length - keep));
  return { keep: entries.filter((entry) => !remove.includes(entry as StampedFailedEntry)), remove };
}

/**
 * Remove one `failed/` entry as cleanup removes a snapshot: renamed into `.trash/` durably first (a link is moved,
 * never followed), then deleted. Returns an error line, or `null` when it is gone.
 */
export function removeFailed(backupDir: string, entry: StampedFailedEntry): string | null {
  const trash = trashDir(backupDir, entry.stamp);
  try {
    if (!isDirectory(trashRoot(backupDir))) ensureDir(trashRoot(backupDir));
    renameDurable(entry.path, trash);
  } catch (error) {
    return `failed/${entry.name}: could not move ${entry.path} out of failed/: ${
      describeOsError(error)
    }; it is untouched, fix that and run cleanup again`;
  }
  try {
    removeQuietly(trash);
  } catch (error) {
    return `failed/${entry.name}: moved out of failed/ but not removed from ${trash}: ${describeOsError(error)}; ` +
      "the next create or cleanup removes it";
  }
  return null;
}

/** A `failed/` entry as `list` shows it. */
export type ListedFailedEntry = FailedEntry & {
  /** Seconds since its stamp, or `null` for a name without one. */
  age_seconds: number | null;
};

/** The `failed/` entries with their ages at `now`, for `list`. */
export function listFailed(backupDir: string, now: Date): ListedFailedEntry[] {
  return failedEntries(backupDir).map((entry) => {
    const time = entry.stamp === null ? null : parseStamp(entry.stamp);
    return { ...entry, age_seconds: time === null ? null : Math.round((now.getTime() - time.getTime()) / 1000) };
  });
}
