/**
 * `failed/`: snapshots that failed their post-backup validation, kept aside for inspection. Cleanup bounds it
 * (the newest few are kept), so a store that fails every night cannot fill the backup disk.
 *
 * @module
 */
import { join } from "node:path";
import { folderNames } from "../fs/probe.ts";
import { failedRoot } from "../snapshot/layout.ts";
import { stampAgeSeconds } from "../snapshot/clock.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { removeViaTrash } from "./remove_via_trash.ts";

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
 * Remove one `failed/` entry as cleanup removes a snapshot (`remove_via_trash.ts`). Returns an error line, or `null`
 * when it is gone.
 */
export function removeFailed(backupDir: string, entry: StampedFailedEntry): string | null {
  return removeViaTrash(backupDir, entry.path, entry.stamp, "failed/", `failed/${entry.name}`).error ?? null;
}

/** A `failed/` entry as `list` shows it. */
export type ListedFailedEntry = FailedEntry & {
  /** Seconds since its stamp, or `null` for a name without one or a stamp in the future. */
  age_seconds: number | null;
};

/** The `failed/` entries with their ages at `now`, for `list`. */
export function listFailed(backupDir: string, now: Date): ListedFailedEntry[] {
  return failedEntries(backupDir).map((entry) => ({
    ...entry,
    age_seconds: entry.stamp === null ? null : stampAgeSeconds(entry.stamp, now),
  }));
}
